"""Provider and operation names folded onto the GenAI semantic-convention value sets.

gen_ai.provider.name values: https://opentelemetry.io/docs/specs/semconv/registry/attributes/gen-ai/
Every convention spells providers its own way ("openai.chat" in the Vercel AI SDK, "azure" in
OpenInference, "Bedrock" in others); one table maps them all, so the `provider` column has a
small fixed vocabulary and pricing can look the provider up.
"""

from __future__ import annotations

from typing import Final

from driftline.store.ingest_spec import PROVIDERS

__all__ = ["OPERATIONS", "normalize_operation", "normalize_provider"]

# One table for both ingest paths: the engine's column spec holds it, this module reads it.
_PROVIDERS: Final = PROVIDERS

_MAX_CACHE: Final = 4096
_cache: dict[str, str] = {}


def normalize_provider(raw: str) -> str:
    """Map a convention's provider spelling to the semconv value; unknown ones pass through lowercased.

    "openai.chat" / "anthropic.messages" (Vercel AI SDK `ai.model.provider`) map by their
    leading segment when the whole string is not a known name.
    """
    hit = _cache.get(raw)
    if hit is not None:
        return hit
    low = raw.strip().lower()
    name = _PROVIDERS.get(low)
    if name is None:
        head, _, rest = low.partition(".")
        # "google.vertex.chat", "vertex.anthropic.messages": hosted on Vertex.
        if low.startswith(("google.vertex", "vertex.")):
            name = "gcp.vertex_ai"
        elif rest:
            name = _PROVIDERS.get(head, head)
        else:
            name = low
    if len(_cache) < _MAX_CACHE:  # bounded: the raw strings come from untrusted spans
        _cache[raw] = name
    return name


# The `operation` vocabulary (docs/columns.md): GenAI semconv gen_ai.operation.name values, plus
# rerank / workflow / guardrail for the span kinds other conventions have and semconv lacks.
OPERATIONS: Final = frozenset(
    {
        "chat",
        "text_completion",
        "embeddings",
        "execute_tool",
        "invoke_agent",
        "create_agent",
        "retrieval",
        "rerank",
        "workflow",
        "guardrail",
        "other",
    }
)

_OPERATION_ALIASES: Final[dict[str, str]] = {
    "generate_content": "chat",
    "completion": "text_completion",
    "completions": "text_completion",
    "embedding": "embeddings",
    "embed": "embeddings",
    "invoke_workflow": "workflow",
    "chain": "workflow",
    "agent": "invoke_agent",
    "tool": "execute_tool",
    "retrieve": "retrieval",
    "retriever": "retrieval",
    "reranker": "rerank",
}


def normalize_operation(raw: str) -> str:
    low = raw.strip().lower()
    if low in OPERATIONS:
        return low
    return _OPERATION_ALIASES.get(low, "other")
