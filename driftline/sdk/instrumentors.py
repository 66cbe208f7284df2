"""Turn on the GenAI instrumentation libraries that are installed, one per provider or framework.

Instrumentors are found through the standard `opentelemetry_instrumentor` entry points (the ones
`opentelemetry-instrument` uses), which the three GenAI families all register:
- "opentelemetry": opentelemetry-python-contrib's instrumentation-genai packages
  (opentelemetry-instrumentation-openai-v2, -google-genai, -vertexai, ...);
- "openinference": Arize's openinference-instrumentation-* packages;
- "traceloop": Traceloop's OpenLLMetry opentelemetry-instrumentation-* packages;
- "other": any other instrumentor whose entry-point name is a known GenAI library.
Non-GenAI instrumentors (requests, flask, ...) are left alone: that is the app's decision.

Several families often instrument the same library (all three patch `openai`), and turning on
two would record every call twice. So per target (the entry-point name: openai, anthropic,
langchain, ...) only the first usable family in `DEFAULT_PREFERENCE` is turned on:
1. opentelemetry, since it emits the current GenAI semantic conventions that Driftline stores
   as they are (https://opentelemetry.io/docs/specs/semconv/gen-ai/);
2. openinference, the richest content capture, mapped by Driftline's normalizer;
3. traceloop, older GenAI names, also mapped;
4. other.
A target whose instrumentor the app already turned on is skipped entirely. Entry points named
in OTEL_PYTHON_DISABLED_INSTRUMENTATIONS are never turned on.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:  # importlib.metadata costs ~20 ms to import: only init() needs it
    from importlib.metadata import Distribution, EntryPoint

    from opentelemetry.trace import TracerProvider

__all__ = [
    "DEFAULT_PREFERENCE",
    "Activated",
    "Candidate",
    "activate",
    "configure_content_capture",
    "deactivate",
    "discover",
    "plan",
    "target_key",
]

_log = logging.getLogger(__name__)

DEFAULT_PREFERENCE: Final = ("opentelemetry", "openinference", "traceloop", "other")
_GROUP: Final = "opentelemetry_instrumentor"
# Targets (normalized entry-point names) taken as GenAI when the family is not recognised.
_GENAI_TARGETS: Final = frozenset(
    {
        *("openai", "anthropic", "bedrock", "vertexai", "googlegenai", "googlegenerativeai", "cohere"),
        *("mistralai", "groq", "ollama", "together", "replicate", "litellm", "watsonx", "alephalpha"),
        *("sagemaker", "transformers", "langchain", "langgraph", "llamaindex", "haystack", "crewai"),
        *("openaiagents", "dspy", "instructor", "googleadk", "smolagents", "agno", "autogen"),
        *("pydanticai", "claudeagentsdk", "mcp", "pinecone", "chromadb", "qdrant", "weaviate"),
        *("milvus", "lancedb", "marqo"),
    }
)
_CAPTURE_ENV: Final = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
# OpenInference hides nothing by default; these switch its content off.
_OPENINFERENCE_HIDE: Final = tuple(
    f"OPENINFERENCE_HIDE_{n}"
    for n in (
        *("INPUTS", "OUTPUTS", "INPUT_MESSAGES", "OUTPUT_MESSAGES", "INPUT_TEXT", "OUTPUT_TEXT"),
        *("PROMPTS", "CHOICES", "EMBEDDINGS_TEXT", "RETRIEVAL_DOCUMENTS", "LLM_TOOLS"),
    )
)


@dataclass(frozen=True)
class Candidate:
    target: str  # normalized entry-point name: "openai", "llamaindex", ...
    family: str
    entry_point: EntryPoint
    distribution: str

    @property
    def label(self) -> str:
        return f"{self.target}:{self.distribution}"


@dataclass(frozen=True)
class Activated:
    candidate: Candidate
    instrumentor: Any  # opentelemetry.instrumentation.instrumentor.BaseInstrumentor


def target_key(entry_point_name: str) -> str:
    """`llama_index`, `llama-index` -> `llamaindex`; `openai_v2` -> `openai`."""
    key = re.sub(r"[^a-z0-9]", "", entry_point_name.lower())
    return key[:-2] if key.endswith("v2") and len(key) > 2 else key


def _meta(dist: Distribution, key: str) -> list[str]:
    return [str(v) for v in dist.metadata.get_all(key) or []]


def family_of(dist: Distribution) -> str | None:
    name = " ".join(_meta(dist, "Name")).lower()
    if name.startswith("openinference-instrumentation"):
        return "openinference"
    where = " ".join([*_meta(dist, "Project-URL"), *_meta(dist, "Home-page"), *_meta(dist, "Author-email")])
    where = where.lower()
    if "traceloop" in where or "openllmetry" in where:
        return "traceloop"
    requires = dist.requires or []
    if "instrumentation-genai" in where or any(r.startswith("opentelemetry-util-genai") for r in requires):
        return "opentelemetry"
    return None


def discover(environ: Mapping[str, str], eps: Iterable[EntryPoint] | None = None) -> list[Candidate]:
    """GenAI instrumentors installed in this environment (reads package metadata, imports nothing)."""
    from importlib.metadata import entry_points

    raw = environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "")
    disabled = {n.strip() for n in raw.split(",") if n.strip()}
    seen: set[tuple[str, str]] = set()
    out: list[Candidate] = []
    for ep in entry_points(group=_GROUP) if eps is None else eps:
        dist = ep.dist
        dist_name = " ".join(_meta(dist, "Name")) if dist is not None else ""
        if ep.name in disabled or (dist_name, ep.value) in seen:
            continue
        seen.add((dist_name, ep.value))
        target = target_key(ep.name)
        family = family_of(dist) if dist is not None else None
        if family is None:
            if target not in _GENAI_TARGETS:
                continue
            family = "other"
        out.append(Candidate(target, family, ep, dist_name))
    return out


def plan(candidates: Iterable[Candidate], preference: Sequence[str] = DEFAULT_PREFERENCE) -> dict[str, list[Candidate]]:
    """Per target, the candidates to try in order. Families missing from `preference` are dropped."""
    rank = {family: i for i, family in enumerate(preference)}
    groups: dict[str, list[Candidate]] = {}
    for c in candidates:
        if c.family in rank:
            groups.setdefault(c.target, []).append(c)
    for group in groups.values():
        group.sort(key=lambda c: rank[c.family])
    return groups


def _already_instrumented(c: Candidate) -> bool:
    # Only an imported module can have been instrumented; checking others would import them.
    if c.entry_point.module not in sys.modules:
        return False
    try:
        cls = c.entry_point.load()
    except Exception:
        return False
    # BaseInstrumentor is a singleton; read its flag without calling cls(), whose __init__ may
    # reset configuration in some instrumentors.
    instance = getattr(cls, "_instance", None)
    return bool(getattr(instance, "_is_instrumented_by_opentelemetry", False))


def _library_missing(c: Candidate) -> bool:
    try:  # every instrumentor package depends on it; without it the instrumentor cannot load either
        from opentelemetry.instrumentation.dependencies import get_dist_dependency_conflicts
    except ImportError:
        return True

    dist = c.entry_point.dist
    return dist is not None and get_dist_dependency_conflicts(dist) is not None


def activate(
    groups: Mapping[str, list[Candidate]],
    tracer_provider: TracerProvider,
    every_candidate: Iterable[Candidate] = (),
) -> list[Activated]:
    """Instrument the first usable candidate of each target with `tracer_provider`."""
    everyone = list(every_candidate)
    done: list[Activated] = []
    for target, group in groups.items():
        related = [c for c in everyone if c.target == target] or group
        if any(_already_instrumented(c) for c in related):
            _log.info("driftline: %s is already instrumented by the application; leaving it", target)
            continue
        for c in group:
            try:
                if _library_missing(c):
                    continue  # e.g. opentelemetry-instrumentation-anthropic installed, anthropic not
                instrumentor = c.entry_point.load()()
                instrumentor.instrument(tracer_provider=tracer_provider)
            except Exception:
                _log.warning("driftline: could not turn on %s", c.label, exc_info=True)
                continue
            if instrumentor.is_instrumented_by_opentelemetry:
                done.append(Activated(c, instrumentor))
                _log.debug("driftline: instrumented %s (%s)", c.label, c.family)
                break
    return done


def deactivate(activated: Iterable[Activated]) -> None:
    for act in activated:
        try:
            act.instrumentor.uninstrument()
        except Exception:
            _log.warning("driftline: could not turn off %s", act.candidate.label, exc_info=True)


def configure_content_capture(capture: bool, environ: MutableMapping[str, str]) -> None:
    """Set each family's content switch to `capture`. The env is their only common config channel.

    - OpenTelemetry contrib: OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_ONLY (content
      as gen_ai.input/output.messages span attributes), which needs the latest conventions, so
      `gen_ai_latest_experimental` is added to OTEL_SEMCONV_STABILITY_OPT_IN;
    - Traceloop: TRACELOOP_TRACE_CONTENT;
    - OpenInference: OPENINFERENCE_HIDE_* (only set when capture is off).
    """
    opt_in = [v.strip() for v in environ.get("OTEL_SEMCONV_STABILITY_OPT_IN", "").split(",") if v.strip()]
    if "gen_ai_latest_experimental" not in opt_in:
        environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = ",".join([*opt_in, "gen_ai_latest_experimental"])
    mode = environ.get(_CAPTURE_ENV, "").strip().upper()
    if capture:
        if mode not in ("SPAN_ONLY", "SPAN_AND_EVENT"):
            environ[_CAPTURE_ENV] = "SPAN_ONLY"
        environ["TRACELOOP_TRACE_CONTENT"] = "true"
    else:
        environ[_CAPTURE_ENV] = "NO_CONTENT"
        environ["TRACELOOP_TRACE_CONTENT"] = "false"
        for name in _OPENINFERENCE_HIDE:
            environ[name] = "true"
