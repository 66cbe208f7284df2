"""Review queues: failures sampled to people, their labels back into the loop.

- models.py: a queue's rules, sampling, cap and rubric; the review API's JSON shapes.
- workflow.py: who holds an item and what its status is, as a fold over stored rows.
- desk.py: the workflow for the API (claims under a lock, read back), queues and items.
- fill.py: the scheduled job that fills queues from scores and feedback, with a watermark.
- golden.py: golden-set export and named datasets; dataset_eval.py: `driftline eval --dataset`.
- agreement.py: each scorer's agreement with people's labels, for the API and /metrics.
"""
