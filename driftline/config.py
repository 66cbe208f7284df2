"""Configuration: one pydantic-settings class per service, parsed once at start-up.

Sources, highest priority first: explicit arguments, `DRIFTLINE_*` environment variables, the
YAML file given with `--config`, defaults. A bad value or an unknown `DRIFTLINE_*` variable (or
YAML key) stops start-up with a `ConfigError` that names it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from driftline.judge_config import JudgeDefinition, endpoint_allowed

if TYPE_CHECKING:
    from driftline.pricing import ModelPrice
    from driftline.store import StoreConfig

__all__ = [
    "DEFAULT_ROLES",
    "ENV_PREFIX",
    "ROLES",
    "ApiSettings",
    "CollectorSettings",
    "CommonSettings",
    "ConfigError",
    "KeyGrant",
    "ScorerJobConfig",
    "ScorerSettings",
    "ServerSettings",
    "UpSettings",
    "hash_api_key",
    "load_settings",
    "masked_dump",
]

ENV_PREFIX = "DRIFTLINE_"


class ConfigError(Exception):
    """A configuration value is invalid; the message names the variable or key."""


def hash_api_key(key: str) -> str:
    """Keys are only ever held hashed, so a heap dump or a log line never shows one."""
    return hashlib.sha256(key.encode()).hexdigest()


# What an API key may do. A key listed without roles gets DEFAULT_ROLES: everything a key could do
# before roles existed (send spans, read, review), never admin, which must be named.
ROLES = ("ingest", "read", "review", "admin")
DEFAULT_ROLES = frozenset({"ingest", "read", "review"})


class KeyGrant(BaseModel):
    """What one API key grants: its tenant, its roles, and the name reviews are recorded under."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    roles: frozenset[str] = DEFAULT_ROLES
    name: str = ""


def _parse_api_keys(raw: str) -> dict[str, KeyGrant]:
    """`key=tenant[:role+role[:name]]` entries, comma separated (roles: ROLES)."""
    out: dict[str, KeyGrant] = {}
    for i, pair in enumerate(p.strip() for p in raw.split(",")):
        if not pair:
            continue
        key, sep, grant = pair.partition("=")
        tenant, _, rest = grant.partition(":")
        role_text, _, name = rest.partition(":")
        key, tenant, name = key.strip(), tenant.strip(), name.strip()
        if not sep or not key or not tenant:
            # Never echo the pair: it holds a secret.
            raise ValueError(f"entry {i + 1} is not of the form key=tenant[:roles[:name]]")
        if not tenant.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ValueError(f"entry {i + 1}: tenant must be letters, digits, '-', '_' or '.'")
        roles = frozenset(r.strip() for r in role_text.split("+") if r.strip()) or DEFAULT_ROLES
        unknown = sorted(roles - set(ROLES))
        if unknown:
            raise ValueError(f"entry {i + 1}: unknown role {unknown[0]!r} (roles: {', '.join(ROLES)})")
        out[hash_api_key(key)] = KeyGrant(tenant=tenant, roles=roles, name=name)
    return out


def _is_loopback(host: str) -> bool:
    return host in {"localhost", "::1"} or host.startswith("127.")


class _Base(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # No dotenv or secrets-dir magic: what configures a service is the environment and
        # the one file named on the command line, and nothing else. load_settings reads both and
        # hands them over as init values: pydantic-settings' own environment source would read the
        # environment a second time, decode list settings as JSON only (refusing the documented
        # comma-separated form) and ignore the `environ` load_settings was given.
        return (init_settings,)


def _list_text(v: Any) -> Any:
    """A list setting given as text (an environment variable): comma separated, or a JSON list."""
    if isinstance(v, str):
        v = v.strip()
        return json.loads(v) if v.startswith("[") else [p.strip() for p in v.split(",") if p.strip()]
    return v


def _json_text(v: Any) -> Any:
    """A mapping setting given as text (an environment variable) is JSON."""
    return json.loads(v) if isinstance(v, str) else v


class PriceOverride(BaseModel):
    """A model's price in USD per million tokens, for models the price table lacks or prices wrong."""

    model_config = ConfigDict(extra="forbid")

    input_mtok: float = Field(ge=0)
    output_mtok: float = Field(ge=0)
    cache_read_mtok: float | None = Field(None, ge=0)
    cache_write_mtok: float | None = Field(None, ge=0)


class CommonSettings(_Base):
    """Settings every Driftline service shares: where the data lives and who may touch it."""

    data_dir: Path = Field(
        Path("driftline-data"), description="Directory for the embedded store, the spool and local state."
    )
    clickhouse_url: str = Field(
        "",
        description="ClickHouse to use: chdb:///path for the embedded engine, or "
        "http(s)://user:pass@host:port for a server. Empty: chdb under data_dir/clickhouse.",
    )
    database: str = Field("driftline", description="ClickHouse database holding Driftline's tables.")
    retention_days: int = Field(30, ge=1, le=3650, description="Days spans and scores are kept (TTL).")
    api_keys: SecretStr = Field(
        SecretStr(""),
        description="API keys, comma separated: key=tenant, or key=tenant:roles[:name] with roles joined by '+' "
        "from ingest (send spans and feedback), read (traces, API, UI), review (labels), admin (everything, "
        "backfills). A key without roles gets ingest+read+review. name: the reviewer recorded for its labels. "
        "Clients send 'Authorization: Bearer <key>'.",
    )
    log_level: str = Field("INFO", description="Log level: DEBUG, INFO, WARNING or ERROR.")
    price_overrides: dict[str, PriceOverride] = Field(
        default_factory=dict,
        description="Prices that win over the genai-prices table, keyed 'provider/model' or 'model' "
        '(JSON in the environment: {"vllm/llama-3-8b": {"input_mtok": 0.1, "output_mtok": 0.2}}).',
    )

    clickhouse_cluster: str = Field(
        "",
        description="Name of the ClickHouse cluster (remote_servers) to lay the schema on: migrations run ON CLUSTER, "
        "spans and scores are Replicated local tables behind Distributed tables sharded by trace id, the other "
        "tables are replicated to every node (docs/cluster.md). Empty: one ClickHouse server.",
    )
    cluster_shard_hosts: list[str] = Field(
        default_factory=list,
        description="Cluster mode: insert spans and scores straight into each shard's local table, one "
        "host[:port] per shard in the cluster's shard order (reached with clickhouse_url's scheme and "
        "credentials); comma separated in the environment. Empty: insert through the Distributed tables.",
    )

    _hosts_list = field_validator("cluster_shard_hosts", mode="before")(_list_text)

    @field_validator("cluster_shard_hosts")
    @classmethod
    def _hosts_valid(cls, v: list[str]) -> list[str]:
        for i, host in enumerate(v):
            name, _, port = host.rpartition(":") if ":" in host else (host, "", "")
            if not name or "/" in host or "@" in host or (port and not (port.isdigit() and 0 < int(port) < 65536)):
                raise ValueError(f"entry {i + 1} ({host!r}) is not host[:port]")
        if len(set(v)) != len(v):
            raise ValueError("a shard host is listed twice")
        return v

    @field_validator("clickhouse_cluster")
    @classmethod
    def _cluster_name(cls, v: str) -> str:
        if v and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", v):
            raise ValueError("must be letters, digits and '_', starting with a letter")
        return v

    @model_validator(mode="after")
    def _cluster_needs_a_server(self) -> CommonSettings:
        if self.clickhouse_cluster and self.embedded:
            raise ValueError(
                "clickhouse_cluster needs a ClickHouse server (clickhouse_url http(s)://...), "
                "not the embedded chdb engine"
            )
        if self.cluster_shard_hosts and not self.clickhouse_cluster:
            raise ValueError("cluster_shard_hosts is set but clickhouse_cluster is not")
        return self

    def store_config(self) -> StoreConfig:
        """Where the store is, as the store takes it (imported here: the light install has no store)."""
        from driftline.store import StoreConfig
        from driftline.store.cluster import ClusterLayout

        url = self.effective_clickhouse_url
        if not self.clickhouse_cluster:
            return StoreConfig(url, self.database)
        parts = urlsplit(url)
        auth = parts.netloc.rpartition("@")[0]
        shard_urls = [
            urlunsplit(parts._replace(netloc=f"{auth}@{host}" if auth else host)) for host in self.cluster_shard_hosts
        ]
        return StoreConfig(url, self.database, ClusterLayout(self.clickhouse_cluster), shard_urls)

    review_queues: dict[str, Any] = Field(
        default_factory=dict,
        description="Review queues every tenant has, by name: rules, sampling, hourly cap, rubric "
        "(see docs/review.md; JSON in the environment). A tenant may change or delete its copy through the API.",
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _keys_from_yaml(cls, v: Any) -> Any:
        # YAML may give a mapping {key: tenant} or a list of "key=tenant" strings.
        if isinstance(v, Mapping):
            return ",".join(f"{k}={t}" for k, t in v.items())
        if isinstance(v, list):
            return ",".join(str(x) for x in v)
        return v

    @field_validator("api_keys")
    @classmethod
    def _keys_well_formed(cls, v: SecretStr) -> SecretStr:
        _parse_api_keys(v.get_secret_value())
        return v

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        if v.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return v.upper()

    @field_validator("clickhouse_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v and not v.startswith(("chdb://", "http://", "https://")):
            raise ValueError("must start with chdb://, http:// or https://")
        return v

    @field_validator("database")
    @classmethod
    def _db(cls, v: str) -> str:
        if not v or not v.replace("_", "").isalnum():
            raise ValueError("must be letters, digits and '_'")
        return v

    def model_prices(self) -> dict[str, ModelPrice]:
        from driftline.pricing import ModelPrice

        return {k: ModelPrice(**v.model_dump()) for k, v in self.price_overrides.items()}

    _price_overrides_json = field_validator("price_overrides", mode="before")(_json_text)
    _review_queues_json = field_validator("review_queues", mode="before")(_json_text)

    @field_validator("review_queues")
    @classmethod
    def _queues_valid(cls, v: dict[str, Any]) -> dict[str, Any]:
        from driftline.review.models import QueueDefinition, QueueIn

        out: dict[str, Any] = {}
        for name, raw in v.items():
            try:
                QueueIn.model_validate({"name": name, **(raw.model_dump() if isinstance(raw, BaseModel) else raw)})
                out[name] = raw if isinstance(raw, QueueDefinition) else QueueDefinition.model_validate(raw)
            except ValidationError as e:
                err = e.errors()[0]
                where = ".".join(str(x) for x in err["loc"])
                raise ValueError(f"queue {name!r}: {where + ': ' if where else ''}{err['msg']}") from None
            except TypeError:
                raise ValueError(f"queue {name!r}: must be a mapping") from None
        return out

    @property
    def effective_clickhouse_url(self) -> str:
        return self.clickhouse_url or f"chdb://{(self.data_dir / 'clickhouse').resolve()}"

    @property
    def embedded(self) -> bool:
        return self.effective_clickhouse_url.startswith("chdb://")

    def tenants_by_key_hash(self) -> dict[str, str]:
        return {h: g.tenant for h, g in self.key_grants().items()}

    def key_grants(self) -> dict[str, KeyGrant]:
        """What each configured key (by its hash) may do."""
        return _parse_api_keys(self.api_keys.get_secret_value())


class ServerSettings(CommonSettings):
    """Every long-running service (collector, scorer, api): its HTTP listener and its shutdown."""

    http_host: str = Field("127.0.0.1", description="Address the HTTP server (OTLP/HTTP, API, UI) binds.")
    http_port: int = Field(4318, ge=0, le=65535, description="Port of the HTTP server; 0 picks a free one.")
    shutdown_timeout_s: float = Field(
        30.0, gt=0, description="Longest a clean shutdown takes: stop accepting, stop jobs, flush, close."
    )

    # /metrics names every tenant, service and model: its own listener and its own token.
    metrics_host: str = Field(
        "127.0.0.1",
        description="Address the /metrics listener binds. Anything but loopback requires metrics_token.",
    )
    metrics_port: int = Field(
        9464,
        ge=-1,
        le=65535,
        description="Port of the /metrics listener (Prometheus scrapes it); 0 picks a free one; -1 serves "
        "/metrics on the HTTP port instead (then a non-loopback http_host requires metrics_token).",
    )
    metrics_token: SecretStr = Field(
        SecretStr(""),
        description="Bearer token Prometheus must send to read /metrics ('Authorization: Bearer <token>'); "
        "empty: none, allowed only while /metrics listens on loopback.",
    )

    # Edge limits: what a client may make this server hold before a route sees the request.
    max_header_bytes: int = Field(
        64 * 1024, ge=1024, description="Largest request line and headers together; beyond it, 431."
    )
    max_header_count: int = Field(100, ge=10, description="Most header fields in one request; beyond it, 431.")
    request_timeout_s: float = Field(
        30.0,
        gt=0,
        description="A request (headers and body) must arrive whole within this many seconds, counted from "
        "its first byte or from the connection; slower clients get 408 and are disconnected.",
    )
    max_inflight_body_bytes: int = Field(
        256 * 1024 * 1024,
        ge=1024,
        description="Request-body bytes held in memory at once, over all requests (each reserves its "
        "Content-Length); beyond it, 503 + Retry-After before the body is read.",
    )

    judge_endpoints: list[str] = Field(
        default_factory=list,
        description="Endpoints LLM judges defined through the API (/api/v1/judges) may call: URLs such as "
        "https://api.openai.com/v1; a judge's base_url must have the same scheme, host and port and a path at "
        "or under one of them. Empty: no endpoint, so no judge can be defined through the API (a tenant "
        "admin would otherwise choose what the scorer calls from inside this network). Judges in the config "
        "file are the operator's own and need no entry. Comma separated in the environment.",
    )

    _judge_endpoints_list = field_validator("judge_endpoints", mode="before")(_list_text)

    @field_validator("judge_endpoints")
    @classmethod
    def _judge_endpoints(cls, v: list[str]) -> list[str]:
        for url in v:
            if not endpoint_allowed(url, [url]):
                raise ValueError(f"{url!r} is not an http:// or https:// URL with a host (and no user or password)")
        return v

    @model_validator(mode="after")
    def _metrics_exposure(self) -> ServerSettings:
        host = self.http_host if self.metrics_port == -1 else self.metrics_host
        if not _is_loopback(host) and not self.metrics_token.get_secret_value():
            raise ValueError(
                f"metrics_token is required: /metrics would listen on {host}, not loopback, and it names "
                "every tenant, service and model"
            )
        if self.metrics_port == self.http_port and self.http_port != 0:
            raise ValueError("metrics_port must differ from http_port (-1 serves /metrics on the HTTP port)")
        return self


class CollectorSettings(ServerSettings):
    """The collector: OTLP receivers and the write path (receive -> decode -> normalize -> buffer -> write)."""

    grpc_port: int = Field(4317, ge=0, le=65535, description="Port of the OTLP/gRPC receiver; 0 picks a free one.")
    grpc_enabled: bool = Field(True, description="Serve OTLP/gRPC.")
    max_request_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="Largest OTLP request accepted, after decompression."
    )
    max_value_bytes: int = Field(
        64 * 1024, ge=256, description="Longest text value stored; longer ones are truncated with a marker."
    )
    queue_capacity_spans: int = Field(
        200_000, ge=100, description="Spans held in memory between receiving and writing; beyond it, 429."
    )
    batch_max_spans: int = Field(50_000, ge=1, description="Spans written per INSERT at most.")
    flush_interval_ms: int = Field(
        1000,
        ge=10,
        description="Longest a span waits in memory before a write. Fewer, larger INSERTs leave ClickHouse "
        "fewer parts to merge: 1000 ms stores ~20% more spans/s than 500 ms (bench/ingest_bench.py).",
    )
    write_retries: int = Field(3, ge=0, description="Retries of a failed INSERT before the batch goes to the spool.")
    spool_max_bytes: int = Field(
        1024 * 1024 * 1024,
        ge=0,
        description="Disk the spool may use while the store is down; beyond it, 503 "
        "(a request larger than the whole spool: 413).",
    )
    tenant_rate_limit_spans_per_s: float = Field(
        0.0, ge=0, description="Spans per second one tenant may send (bursts of 2 s allowed); 0 turns it off."
    )
    decode_workers: int = Field(
        -1,
        ge=-1,
        description="Processes that decode and normalize OTLP requests; -1: one per CPU core (at most 8); "
        "0: a thread of the collector process.",
    )
    redact: list[str] = Field(
        default_factory=list,
        description="Redact before storing: built-in names (email, credit_card, api_key) or name=regex; "
        "comma separated in the environment.",
    )

    _redact_list = field_validator("redact", mode="before")(_list_text)

    @field_validator("redact")
    @classmethod
    def _redact_valid(cls, v: list[str]) -> list[str]:
        from driftline.collector.redact import parse_patterns

        parse_patterns(v)
        return v

    @model_validator(mode="after")
    def _batch_fits_queue(self) -> CollectorSettings:
        if self.batch_max_spans > self.queue_capacity_spans:
            raise ValueError("batch_max_spans must not exceed queue_capacity_spans")
        if self.max_inflight_body_bytes < self.max_request_bytes:
            raise ValueError("max_inflight_body_bytes must be at least max_request_bytes")
        return self


class ScorerJobConfig(BaseModel):
    """Per-scorer overrides (YAML `scorers: {name: {...}}`, or JSON in DRIFTLINE_SCORERS)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Run this scorer.")
    interval_s: float | None = Field(None, gt=0, description="Seconds between runs; default scorer_interval_s.")
    sample_rate: float | None = Field(None, ge=0, le=1, description="Share of traces scored; errors always are.")
    tenants: list[str] = Field(default_factory=list, description="Only these tenants (empty: all).")
    services: list[str] = Field(default_factory=list, description="Only these services.")
    models: list[str] = Field(default_factory=list, description="Only these request/response models.")
    operations: list[str] = Field(default_factory=list, description="Only these operations.")
    releases: list[str] = Field(default_factory=list, description="Only these releases.")
    environments: list[str] = Field(default_factory=list, description="Only these environments.")
    error_only: bool = Field(False, description="Only spans with error status.")
    max_spans_per_hour: int = Field(
        0,
        ge=0,
        description="Budget: most spans scored per tenant per clock hour (0: no limit); the rest stay unscored.",
    )
    stratum_min_per_hour: int | None = Field(
        None, ge=0, description="Stratified sampling floor for this scorer; default scorer_stratum_min_per_hour."
    )


class ScorerSettings(ServerSettings):
    """The scorer: scheduled jobs that sample stored spans and write scores, SLIs and drift."""

    scorers_enabled: bool = Field(True, description="Run the scorers and the SLI job in this process.")
    scorer_interval_s: float = Field(15.0, gt=0, description="Default seconds between a scorer's runs.")
    scorer_sample_rate: float = Field(1.0, ge=0, le=1, description="Default share of traces scored.")
    scorer_stratum_min_per_hour: int = Field(
        1800,
        ge=0,
        description="Stratified sampling (where a scorer's sample rate is below 1): each (service, model, release) "
        "is sampled at least at the rate that scores this many of its spans an hour, from its traffic the hour "
        "before; one with no traffic then (a new release) is scored whole. 0: one rate for all.",
    )
    scorer_sweep_s: float = Field(
        600.0, ge=0, description="Each run re-reads this many seconds behind its watermark for late spans."
    )
    scorer_max_spans_per_run: int = Field(5000, ge=1, description="Most spans one scorer run takes.")
    replica_index: int = Field(0, ge=0, description="This scorer replica's index (0-based); shards by trace id.")
    replica_count: int = Field(1, ge=1, description="How many scorer replicas share the work.")
    scorers: dict[str, ScorerJobConfig] = Field(
        default_factory=dict, description="Per-scorer overrides by scorer name (JSON in the environment)."
    )
    latency_slow_ms: float = Field(10_000.0, gt=0, description="An LLM call slower than this is labeled slow.")
    judge_base_url: str = Field("", description="OpenAI-compatible endpoint of the LLM judge; empty: no judge.")
    judge_model: str = Field("gpt-4o-mini", description="Model the judge asks.")
    judge_api_key: SecretStr = Field(SecretStr(""), description="API key for the judge endpoint.")
    judge_budget_tokens_per_hour: int = Field(200_000, ge=0, description="Judge tokens per tenant per hour.")
    judge_budget_usd_per_hour: float = Field(1.0, ge=0, description="Judge spend per tenant per hour (USD).")
    judge_concurrency: int = Field(
        4, ge=1, le=64, description="Judge calls in flight at once per replica (a scoring run's worker threads)."
    )
    judges: dict[str, JudgeDefinition] = Field(
        default_factory=dict,
        description="Custom LLM judges by name: prompt template, output schema, endpoint and model, budget, "
        "canary (see docs/judges.md; JSON in the environment). Filters and sampling: `scorers.<name>`.",
    )

    sli_interval_s: float = Field(15.0, gt=0, description="Seconds between SLI and drift computations.")
    review_fill_interval_s: float = Field(
        30.0, gt=0, description="Seconds between runs of the review queues' filling job."
    )
    review_agreement_interval_s: float = Field(
        60.0, gt=0, description="Seconds between computations of scorer-human agreement for /metrics."
    )
    review_agreement_window_s: float = Field(
        7 * 86_400.0, gt=0, description="Scorer-human agreement is computed over labels of this many seconds."
    )
    sli_top_models: int = Field(10, ge=1, description="Models per service that keep their name in SLI labels.")
    sli_top_releases: int = Field(5, ge=1, description="Releases per service that keep their name in SLI labels.")
    drift_current_window_s: float = Field(300.0, gt=0, description="Drift: length of the current window.")
    drift_current_max_window_s: float = Field(
        3600.0,
        gt=0,
        description="Drift: where the current window holds fewer than drift_min_current samples (a new release, "
        "low traffic), it looks back a minute at a time up to this long, so the test still gets its minimum sample.",
    )
    drift_baseline_window_s: float = Field(86_400.0, gt=0, description="Drift: the baseline window before it.")
    drift_alpha: float = Field(1e-5, gt=0, lt=1, description="Drift: one-sided significance level.")
    drift_min_current: int = Field(150, ge=1, description="Drift: fewest samples in the current window.")
    drift_min_baseline: int = Field(1000, ge=1, description="Drift: fewest samples in the baseline window.")
    drift_min_effect_rate: float = Field(0.2, ge=0, description="Drift: smallest rate change (Cohen's h).")
    drift_min_effect_distribution: float = Field(
        0.1, ge=0, description="Drift: smallest distribution shift (KS D+) for latency and cost."
    )

    _scorers_json = field_validator("scorers", "judges", mode="before")(_json_text)

    @field_validator("judges")
    @classmethod
    def _judge_names(cls, v: dict[str, JudgeDefinition]) -> dict[str, JudgeDefinition]:
        for name in v:
            if not name or not name.replace("_", "").isalnum() or not name[0].isalpha():
                raise ValueError(f"judge name {name!r} must start with a letter and be letters, digits and '_'")
        return v

    @model_validator(mode="after")
    def _replica(self) -> ScorerSettings:
        if self.replica_index >= self.replica_count:
            raise ValueError("replica_index must be below replica_count")
        for name, j in self.judges.items():
            if not (j.base_url or self.judge_base_url):
                raise ValueError(f"judges.{name}: no endpoint (set its base_url or judge_base_url)")
        return self


class ApiSettings(ServerSettings):
    """The API: the read API, feedback, review and the web UI."""

    review_claim_settle_s: float = Field(
        0.0,
        ge=0,
        le=5,
        description="Review claims: wait this long before reading a new claim back. 0 with one API process; "
        "with several API replicas, more than the store's insert-to-visible delay plus clock skew.",
    )
    login_failures_per_minute: int = Field(
        10,
        ge=0,
        description="Web UI sign-in: failed attempts one client address may make per minute (bursts of that many); "
        "beyond it every attempt from the address gets 429 until the bucket refills. Counted per API process. "
        "0 turns it off.",
    )


class UpSettings(CollectorSettings, ScorerSettings, ApiSettings):
    """`driftline up`: every component in one process on the embedded store."""

    demo: bool = Field(
        False, description="Send demo LLM traffic (to tenant 'default' when no API keys are configured, else 'demo')."
    )


_ALL_CLASSES: list[type[CommonSettings]] = [
    CommonSettings,
    ServerSettings,
    CollectorSettings,
    ScorerSettings,
    ApiSettings,
    UpSettings,
]


def _known_fields() -> set[str]:
    return {name for cls in _ALL_CLASSES for name in cls.model_fields}


def _env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


S = TypeVar("S", bound=CommonSettings)


def load_settings(
    cls: type[S],
    config_file: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> S:
    """Parse configuration once; raise ConfigError naming the bad variable or key."""
    env = os.environ if environ is None else environ
    known = _known_fields()
    unknown = sorted(k for k in env if k.startswith(ENV_PREFIX) and k[len(ENV_PREFIX) :].lower() not in known)
    if unknown:
        raise ConfigError(f"unknown environment variable {unknown[0]} (known: DRIFTLINE_<field>, see docs/config.md)")

    file_values: dict[str, Any] = {}
    if config_file:
        path = Path(config_file)
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except OSError as e:
            raise ConfigError(f"config file {path}: {e.strerror}") from e
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path}: not valid YAML: {e}") from e
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path}: must be a mapping of setting names to values")
        # One file can configure every service: keys of other services are allowed, and ignored here.
        for key in loaded:
            if str(key) not in known:
                raise ConfigError(f"config file {path}: unknown key {key!r}")
        file_values = {str(k): v for k, v in loaded.items() if str(k) in cls.model_fields}

    # Environment beats the file; explicit overrides beat both.
    env_values = {f: env[_env_name(f)] for f in cls.model_fields if _env_name(f) in env}
    merged = {**file_values, **env_values, **overrides}
    try:
        # model_validate skips the settings sources: values come only from `merged`, which
        # already holds the environment, so the unknown-variable check above saw everything.
        return cls.model_validate(merged)
    except ValidationError as e:
        err = e.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        if field in env_values:
            where = _env_name(field)
        elif field in file_values:
            where = f"{field!r} in {config_file}"
        else:
            where = field or "configuration"
        inner = ".".join(str(x) for x in err["loc"][1:])
        if inner:
            where += f" ({inner})"
        raise ConfigError(f"invalid {where}: {err['msg']}") from None


def masked_dump(settings: CommonSettings) -> dict[str, Any]:
    """The effective configuration with secrets masked, for `driftline config show`."""
    out: dict[str, Any] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            n = len(settings.tenants_by_key_hash()) if name == "api_keys" else 0
            value = f"***({n} keys)" if name == "api_keys" else ("***" if value.get_secret_value() else "")
        elif isinstance(value, Path):
            value = str(value)
        elif isinstance(value, dict):
            value = {k: v.model_dump(mode="json") if isinstance(v, BaseModel) else v for k, v in value.items()}
        out[name] = value
    url = out.get("clickhouse_url") or settings.effective_clickhouse_url
    out["clickhouse_url"] = _mask_url(url)
    return out


def _mask_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at:
        return url
    user = creds.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"


def _default_text(f: FieldInfo) -> str:
    """A field's default as it would be written in the environment (a test sets each one back),
    or "(none)" when it is empty. Defaults built by a factory are built here: `f.default` holds
    pydantic's "undefined" sentinel for them."""
    if f.is_required():
        return "(required)"
    value = f.get_default(call_default_factory=True, validated_data={})
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value is None or value in ("", [], {}):
        return "(none)"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dict | list):
        text = json.dumps(value)
    else:
        text = str(value)
    return f"`{text}`"


def config_markdown() -> str:
    """docs/config.md, generated from the settings classes (a test keeps the file in step)."""
    lines = [
        "# Configuration",
        "",
        "Generated from `driftline/config.py` by `python -m driftline.config > docs/config.md`.",
        "Each setting is the environment variable `DRIFTLINE_<NAME>` or the key `<name>` of the YAML file",
        "given with `--config`. The environment wins over the file.",
        "",
    ]
    seen: set[str] = set()
    for cls in _ALL_CLASSES:
        own = [n for n in cls.model_fields if n not in seen]
        if not own:
            continue
        lines += [f"## {cls.__name__}", "", (cls.__doc__ or "").strip(), ""]
        lines += ["| variable | default | description |", "|---|---|---|"]
        for name in own:
            f = cls.model_fields[name]
            lines.append(f"| `{_env_name(name)}` | {_default_text(f)} | {f.description} |")
            seen.add(name)
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(config_markdown(), end="")
