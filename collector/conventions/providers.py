"""Provider and operation names folded onto the GenAI semantic-convention value sets.

gen_ai.provider.name values: https://opentelemetry.io/docs/specs/semconv/registry/attributes/gen-ai/
Every convention spells providers its own way ("openai.chat" in the Vercel AI SDK, "azure" in
OpenInference, "Bedrock" in others); one table maps them all, so the `provider` column has a
small fixed vocabulary and pricing can look the provider up.
"""

from __future__ import annotations

from typing import Final

from driftline.store import ingest_spec
from driftline.store.ingest_spec import OPERATION_TABLES, PROVIDERS

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
OPERATIONS: Final = frozenset(ingest_spec.OPERATIONS)

# Each operation to itself, and the other spellings ("generate_content", "retriever", ...) to theirs.
_OPERATION_BY_NAME: Final = OPERATION_TABLES["genai"][0]


def normalize_operation(raw: str) -> str:
    return _OPERATION_BY_NAME.get(raw.strip().lower(), "other")
