"""Custom LLM-judge evaluators, declared in configuration (YAML `judges: {name: {...}}`, or JSON in
DRIFTLINE_JUDGES): the prompt template, the answer's schema, the endpoint and model, which spans
(filters and sampling), the budget, and a canary set that watches the judge for drift.

The template is Jinja2, rendered in a sandbox with strict undefined variables, so a typo in a
variable name stops start-up instead of sending the judge an empty field. Its variables:

- `input`, `output`: the span's input and output text;
- `context`: retrieved documents, tool results and the system prompt found in the trace before it;
- `expected`: the expected answer (the span attribute named by `expected_attribute`; a canary
  item's `expected`), '' when there is none;
- `metadata`: service, model, release, environment, operation, name and the span's attributes.

A judge's version is a hash of everything that decides its verdicts (templates, output schema,
endpoint, model, temperature, structured-output mode, expected attribute): editing the prompt makes
a new version, and scores are keyed by version, so old and new verdicts never mix. Budget,
sampling, filters, retries and the canary are not part of it: changing them changes no verdict.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = [
    "JUDGE_NAME",
    "TEMPLATE_VARIABLES",
    "ApiJudge",
    "ApiJudgeIn",
    "CanaryConfig",
    "JudgeDefinition",
    "JudgeOutput",
    "endpoint_allowed",
    "judge_template_env",
]

TEMPLATE_VARIABLES = frozenset({"input", "output", "context", "expected", "metadata"})


def judge_template_env() -> SandboxedEnvironment:
    """The one Jinja2 environment judge prompts render in: sandboxed (a template cannot reach
    Python objects' internals), strict (an unknown variable is an error, never ''), no HTML escaping
    (prompts are text)."""
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


def _check_template(text: str) -> str:
    try:
        ast = judge_template_env().parse(text)
    except TemplateSyntaxError as e:
        raise ValueError(f"not a valid template (line {e.lineno}): {e.message}") from None
    unknown = sorted(meta.find_undeclared_variables(ast) - TEMPLATE_VARIABLES)
    if unknown:
        raise ValueError(f"unknown template variable {unknown[0]!r} (known: {', '.join(sorted(TEMPLATE_VARIABLES))})")
    return text


class JudgeOutput(BaseModel):
    """What the judge answers: one JSON object {"score": number, "label": one of `labels`,
    "reasoning": text}. Sent as a JSON schema where the endpoint supports structured output."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    labels: list[str] = Field(min_length=1, description="The labels the judge may give.")
    score_min: float = Field(0.0, description="Lowest score.")
    score_max: float = Field(1.0, description="Highest score.")

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("labels must be distinct")
        bad = [x for x in v if not x or not x.replace("_", "").replace("-", "").isalnum()]
        if bad:
            raise ValueError(f"label {bad[0]!r} must be letters, digits, '_' or '-'")
        if "error" in v:
            raise ValueError("'error' is reserved for replies that do not fit the schema")
        return v

    @model_validator(mode="after")
    def _range(self) -> JudgeOutput:
        if not self.score_min < self.score_max:
            raise ValueError("score_min must be below score_max")
        return self

    def json_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "score": {"type": "number", "minimum": self.score_min, "maximum": self.score_max},
                "label": {"type": "string", "enum": list(self.labels)},
                "reasoning": {"type": "string"},
            },
            "required": ["score", "label", "reasoning"],
            "additionalProperties": False,
        }


class CanaryConfig(BaseModel):
    """A small fixed set of items the judge re-scores on a schedule; a verdict that differs from
    the pinned baseline (the judge version's first canary run) means the judge drifted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: Path | None = Field(
        None,
        description='JSON Lines, one item a line: {"id", "input", "output", "context", "expected", '
        '"metadata"} (id and output required).',
    )
    dataset: str = Field(
        "", description="A review golden dataset (items people reviewed) of `tenant` whose records are canary items."
    )
    tenant: str = Field("default", description="Tenant whose store keeps the baseline and whose judge budget pays.")
    interval_s: float = Field(3600.0, gt=0, description="Seconds between canary runs.")

    @field_validator("file")
    @classmethod
    def _file(cls, v: Path | None) -> Path | None:
        if v is not None and not v.is_file():
            raise ValueError(f"canary file {v} does not exist")
        return v

    @model_validator(mode="after")
    def _some_items(self) -> CanaryConfig:
        if self.file is None and not self.dataset:
            raise ValueError("a canary needs a file, a dataset, or both")
        return self


class JudgeDefinition(BaseModel):
    """One custom LLM judge. Filters and sampling are those of `scorers.<name>`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str = Field(min_length=1, description="Jinja2 template of the user message.")
    system: str = Field("", description="Jinja2 template of the system message ('' : none).")
    output: JudgeOutput
    base_url: str = Field("", description="OpenAI-compatible endpoint; '' : judge_base_url.")
    model: str = Field("", description="Model the judge asks; '' : judge_model.")
    api_key: SecretStr = Field(SecretStr(""), description="API key of the endpoint; '' : judge_api_key.")
    provider: str = Field("openai", description="Provider of the model, for pricing its tokens.")
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature.")
    structured_output: Literal["json_schema", "json_object", "none"] = Field(
        "json_schema",
        description="How the reply's shape is asked for: response_format json_schema (strict), json_object, or "
        "only in the prompt. An endpoint that refuses json_schema (400) is asked again without it, and from "
        "then on not asked with it.",
    )
    expected_attribute: str = Field(
        "driftline.expected_output", description="Span attribute holding the expected answer (template `expected`)."
    )
    max_reply_tokens: int = Field(400, ge=16, description="Most tokens of a reply.")
    timeout_s: float = Field(30.0, gt=0, description="Seconds one call may take.")
    max_retries: int = Field(
        3, ge=0, le=10, description="Retries of a call that failed transiently (429, 5xx, timeout)."
    )
    budget_tokens_per_hour: int = Field(200_000, ge=0, description="Tokens per tenant per hour.")
    budget_usd_per_hour: float = Field(1.0, ge=0, description="USD per tenant per hour.")
    concurrency: int = Field(4, ge=1, le=64, description="Calls in flight at once per replica.")
    canary: CanaryConfig | None = Field(None, description="The canary set that watches this judge.")

    _prompt = field_validator("prompt", "system")(_check_template)

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v

    def version(self, base_url: str, model: str) -> str:
        """The hash of what decides verdicts (module docstring), with the effective endpoint and model."""
        doc = {
            "prompt": self.prompt,
            "system": self.system,
            "output": self.output.model_dump(mode="json"),
            "base_url": base_url.rstrip("/"),
            "model": model,
            "temperature": self.temperature,
            "structured_output": self.structured_output,
            "expected_attribute": self.expected_attribute,
        }
        return "j" + hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


class ApiJudge(JudgeDefinition):
    """A judge defined through the API (`/api/v1/judges`), stored per tenant; the scorer picks it up
    on its next run. Its endpoint and model are its own (no fallback to the operator's judge
    settings, so the operator's key is never sent to an endpoint a tenant chose). `api_key` is
    write-only: stored, sent to this endpoint only, never answered back or logged."""

    base_url: str = Field(min_length=1, description="OpenAI-compatible endpoint (http:// or https://).")
    model: str = Field(min_length=1, max_length=200, description="Model the judge asks.")
    api_key: SecretStr = Field(
        SecretStr(""),
        exclude=True,
        description="API key of the endpoint. Write-only: never returned. On PUT, left out: the stored key is "
        'kept while base_url stays the same; "": no key.',
    )
    canary: CanaryConfig | None = Field(
        None, description="Not through the API (a canary file is on the scorer's disk): use canary_dataset."
    )
    canary_dataset: str = Field(
        "",
        pattern=r"^([a-z0-9][a-z0-9_.-]{0,63})?$",
        description="A review golden dataset of this tenant whose items are the judge's canary set ('': none).",
    )
    canary_interval_s: float = Field(3600.0, ge=60, description="Seconds between canary runs.")
    # Which spans, as `scorers.<name>` does for a configured scorer.
    enabled: bool = Field(True, description="Run this judge.")
    interval_s: float | None = Field(None, gt=0, description="Seconds between runs; default scorer_interval_s.")
    sample_rate: float = Field(1.0, ge=0, le=1, description="Share of traces judged; errors always are.")
    services: list[str] = Field(default_factory=list, max_length=100, description="Only these services.")
    models: list[str] = Field(default_factory=list, max_length=100, description="Only these request/response models.")
    operations: list[str] = Field(default_factory=list, max_length=100, description="Only these operations.")
    releases: list[str] = Field(default_factory=list, max_length=100, description="Only these releases.")
    environments: list[str] = Field(default_factory=list, max_length=100, description="Only these environments.")
    error_only: bool = Field(False, description="Only spans with error status.")
    max_spans_per_hour: int = Field(0, ge=0, description="Most spans judged per clock hour (0: no limit).")

    @field_validator("canary")
    @classmethod
    def _no_canary(cls, v: CanaryConfig | None) -> None:
        if v is not None:
            raise ValueError("not through the API: a judge's canary set is canary_dataset, a review golden dataset")

    @property
    def judge_version(self) -> str:
        """The definition hash (JudgeDefinition.version) with this judge's own endpoint and model."""
        return self.version(self.base_url, self.model)


JUDGE_NAME = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"


def _parts(url: str) -> tuple[str, str, int, str] | None:
    """(scheme, host, port, path without a trailing slash) of an http(s) URL; None: not one."""
    try:
        u = urlsplit(url)
        port = u.port or (443 if u.scheme == "https" else 80)
    except ValueError:
        return None
    if u.scheme not in ("http", "https") or not u.hostname or u.username or u.password:
        return None
    return u.scheme, u.hostname.lower(), port, u.path.rstrip("/")


def endpoint_allowed(url: str, allowed: Sequence[str]) -> bool:
    """Whether a judge defined through the API may call `url`: the operator's `judge_endpoints`
    list it (same scheme, host and port; its path at or under an entry's path, whole segments
    only). A tenant admin chooses the URL the scorer calls from inside the operator's network,
    so it is never free: 'https://api.example.com' does not allow 'https://api.example.com.evil'."""
    got = _parts(url)
    if got is None:
        return False
    for entry in allowed:
        want = _parts(entry)
        if want is not None and got[:3] == want[:3] and (got[3] == want[3] or got[3].startswith(want[3] + "/")):
            return True
    return False


class ApiJudgeIn(ApiJudge):
    """A new judge: its name and its definition."""

    name: str = Field(pattern=JUDGE_NAME, description="The judge's name: the scorer name on its scores.")
