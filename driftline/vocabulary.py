"""The names Driftline's stages share, defined once: which operations are model calls, the label
set of the SLIs and drift alerts, and the labels scorers give.

The collector, the scorers, the store's queries, the SLI job and the alert rules must agree on
these. This module imports nothing of Driftline, so every package may import it without bending
the import graph (collector -> store, scorers -> store; tests/test_layout.py).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "FAILED_LABEL",
    "LLM_OPERATIONS",
    "MODEL_CALL_OPERATIONS",
    "OTHER_LABEL",
    "PRICED_OPERATIONS",
    "SLI_LABELS",
    "TOOL_FAILURE_CLASSES",
]

# `operation` values (normalized gen_ai.operation.name) of a call that generates text: what
# hallucination, refusal and PII scorers judge, and what the request SLIs count. The normalizer
# stores Gemini's generate_content as chat; the name stays for rows written before it did.
LLM_OPERATIONS: Final = frozenset({"chat", "text_completion", "generate_content"})
# Every model call that spends tokens (cost scorers, the cost SLIs).
MODEL_CALL_OPERATIONS: Final = LLM_OPERATIONS | {"embeddings", "rerank"}
# Spans the price table prices: model calls, and GenAI spans that name no known operation.
# Agent and workflow spans aggregate their children's usage: pricing them would count twice.
PRICED_OPERATIONS: Final = MODEL_CALL_OPERATIONS | {"other", ""}

# The labels of every SLI and drift series, and of the alert rules over them (bounded per tenant
# and service: see driftline/sli.py).
SLI_LABELS: Final = ("tenant", "service", "model", "release", "environment")
# The value a model or release takes in SLI and drift series beyond the top N per service (a
# bounded label set): it names no model or release, so links built from labels leave it out.
OTHER_LABEL: Final = "other"

# The classes scorers/tool_failure.py tells apart, in its precedence order (docs there).
TOOL_FAILURE_CLASSES: Final = (
    "timeout",
    "invalid_arguments",
    "unknown_tool",
    "exception",
    "error_status",
    "error_result",
    "retried",
)
# The label a rate scorer gives a failed answer.
FAILED_LABEL: Final = {"hallucination": "hallucinated", "refusal": "refused"}
