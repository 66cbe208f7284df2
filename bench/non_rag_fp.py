"""False "hallucinated" labels of the offline scorer on LLM calls that are not retrieval-augmented.

    python bench/non_rag_fp.py [--halueval PATH]

A plain chat call has no evidence to check an answer against: any "hallucinated" label on one is a
false positive of the monitor (the answer may be right or wrong; the scorer cannot know). Built from
HaluEval dev: every answer (right and wrong, 600) as the output of a chat span whose system prompt
is one of a few ordinary instruction prompts and whose user message is the question, no retrieval in
the trace; plus the load generator's kind of call ("You are a support agent." and a refund answer).
Prints the share labelled hallucinated, and, as a check that evidence pasted into the prompt is
still used, the balanced accuracy on the same answers with the HaluEval passage pasted into the
prompt the way LangChain's and LlamaIndex's question-answering templates paste it.
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

from driftline.scorers.base import TraceContext
from driftline.scorers.grounding.dataset import load_examples
from driftline.scorers.hallucination import OfflineHallucinationScorer

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

PLAIN_SYSTEM_PROMPTS = (
    "You are a support agent.",
    "You are a helpful assistant. Answer concisely and politely.",
    "You are Acme's assistant. Be friendly, keep answers short, and never share internal details.",
    "",
    "Background: You are a travel assistant for Globetrek. Help users plan trips.\nTone: warm and brief.",
    "### Role\nYou are a tutor.\n### Rules\n- Explain step by step.\n- Never give the final answer first.",
    'Answer the following question. Respond in JSON, for example:\n```json\n{"answer": "Paris"}\n```',
    "You are a coding assistant.\n---\nKeep answers short.\n---\nIf unsure, say so.",
    "Instructions: answer the user's question. Note: today is Monday. Data: not available to you.",
)
SUPPORT = [
    ("How long do I have to return an item?", "You have 30 days to return it, with the receipt."),
    ("Can I change my delivery address?", "Yes, until the order ships: go to Orders and pick Edit address."),
    ("Do you ship to Canada?", "We ship to Canada in 5 to 7 business days; duties are paid on delivery."),
]
LANGCHAIN = (
    "Use the following pieces of context to answer the question at the end. If you don't know the answer, "
    "just say that you don't know, don't try to make up an answer.\n\n{context}\n\nQuestion: {question}\n"
    "Helpful Answer:"
)
LLAMAINDEX = (
    "Context information is below.\n---------------------\n{context}\n---------------------\nGiven the "
    "context information and not prior knowledge, answer the query.\nQuery: {question}\nAnswer: "
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--halueval", type=Path, default=DATA / "halueval-qa" / "dev.jsonl")
    args = parser.parse_args()
    scorer = OfflineHallucinationScorer()
    empty = TraceContext()
    examples = load_examples(args.halueval)
    labels: collections.Counter[str] = collections.Counter()
    for i, e in enumerate(examples):
        span = {"span_id": f"s{i}", "operation": "chat", "output_text": e.answer, "input_text": e.question,
                "system_prompt": PLAIN_SYSTEM_PROMPTS[i % len(PLAIN_SYSTEM_PROMPTS)]}  # fmt: skip
        s = scorer.score(span, empty)
        labels[s.label if s is not None else "unscored"] += 1
    for i, (question, answer) in enumerate(SUPPORT):
        span = {"span_id": f"p{i}", "operation": "chat", "output_text": answer, "input_text": question,
                "system_prompt": "You are a support agent."}  # fmt: skip
        s = scorer.score(span, empty)
        labels[s.label if s is not None else "unscored"] += 1
    n = sum(labels.values())
    print(f"non-RAG chat calls: {n}; labels {dict(sorted(labels.items()))}")
    print(f"false-positive rate (labelled hallucinated): {labels['hallucinated'] / n:.4f}")
    for name, template, where in (("LangChain", LANGCHAIN, "system_prompt"), ("LlamaIndex", LLAMAINDEX, "input_text")):
        tp = tn = pos = neg = 0
        for i, e in enumerate(examples):
            prompt = template.format(context=e.context, question=e.question)
            span = {"span_id": f"r{i}", "operation": "chat", "output_text": e.answer, "input_text": e.question}
            span[where] = prompt
            s = scorer.score(span, empty)
            flagged = s is not None and s.label == "hallucinated"
            pos += e.hallucinated
            neg += not e.hallucinated
            tp += e.hallucinated and flagged
            tn += (not e.hallucinated) and not flagged
        print(f"passage pasted into the {where} ({name} template): balanced accuracy {(tp / pos + tn / neg) / 2:.3f}")


if __name__ == "__main__":
    main()
