"""Config: bad values and unknown variables stop start-up with a message naming them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from driftline.config import (
    ApiSettings,
    CollectorSettings,
    ConfigError,
    UpSettings,
    hash_api_key,
    load_settings,
    masked_dump,
)


def test_defaults_and_names() -> None:
    s = load_settings(UpSettings, environ={})
    assert s.http_port == 4318 and s.grpc_port == 4317
    assert s.effective_clickhouse_url.startswith("chdb://") and s.embedded


def test_env_values_parse() -> None:
    s = load_settings(
        CollectorSettings,
        environ={
            "DRIFTLINE_HTTP_PORT": "9000",
            "DRIFTLINE_CLICKHOUSE_URL": "http://u:pw@127.0.0.1:8123",
            "DRIFTLINE_API_KEYS": "k1=acme, k2=beta",
            "DRIFTLINE_DATA_DIR": "/tmp/x",
        },
    )
    assert s.http_port == 9000 and not s.embedded and s.data_dir == Path("/tmp/x")
    assert s.tenants_by_key_hash() == {hash_api_key("k1"): "acme", hash_api_key("k2"): "beta"}


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DRIFTLINE_HTTP_PORT": "not-a-port"}, "DRIFTLINE_HTTP_PORT"),
        ({"DRIFTLINE_HTTP_PORT": "70000"}, "DRIFTLINE_HTTP_PORT"),
        ({"DRIFTLINE_GRPC_PORT": "-1"}, "DRIFTLINE_GRPC_PORT"),
        ({"DRIFTLINE_CLICKHOUSE_URL": "mysql://x"}, "DRIFTLINE_CLICKHOUSE_URL"),
        ({"DRIFTLINE_API_KEYS": "no-equals-sign"}, "DRIFTLINE_API_KEYS"),
        ({"DRIFTLINE_RETENTION_DAYS": "0"}, "DRIFTLINE_RETENTION_DAYS"),
        ({"DRIFTLINE_LOG_LEVEL": "chatty"}, "DRIFTLINE_LOG_LEVEL"),
        ({"DRIFTLINE_HTTP_PROT": "4318"}, "DRIFTLINE_HTTP_PROT"),
        ({"DRIFTLINE_DECODE_WORKERS": "-2"}, "DRIFTLINE_DECODE_WORKERS"),
        ({"DRIFTLINE_PRICE_OVERRIDES": "not json"}, "DRIFTLINE_PRICE_OVERRIDES"),
        ({"DRIFTLINE_PRICE_OVERRIDES": '{"m": {"input_mtok": -1, "output_mtok": 1}}'}, "DRIFTLINE_PRICE_OVERRIDES"),
        ({"DRIFTLINE_PRICE_OVERRIDES": '{"m": {"input_mtok": 1, "output": 1}}'}, "DRIFTLINE_PRICE_OVERRIDES"),
        ({"DRIFTLINE_JUDGE_ENDPOINTS": "ftp://judge/v1"}, "DRIFTLINE_JUDGE_ENDPOINTS"),
        ({"DRIFTLINE_JUDGE_ENDPOINTS": "https://user:pw@judge/v1"}, "DRIFTLINE_JUDGE_ENDPOINTS"),
    ],
)
def test_bad_env_value_names_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(CollectorSettings, environ=env)
    assert named in str(e.value)


@pytest.mark.parametrize("value", ["0", "65", "many"])
def test_a_bad_judge_concurrency_names_the_variable(value: str) -> None:
    from driftline.config import ScorerSettings

    with pytest.raises(ConfigError) as e:
        load_settings(ScorerSettings, environ={"DRIFTLINE_JUDGE_CONCURRENCY": value})
    assert "DRIFTLINE_JUDGE_CONCURRENCY" in str(e.value)
    assert load_settings(ScorerSettings, environ={"DRIFTLINE_JUDGE_CONCURRENCY": "1"}).judge_concurrency == 1


@pytest.mark.parametrize("value", ["-1", "many"])
def test_a_bad_sign_in_limit_names_the_variable(value: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(ApiSettings, environ={"DRIFTLINE_LOGIN_FAILURES_PER_MINUTE": value})
    assert "DRIFTLINE_LOGIN_FAILURES_PER_MINUTE" in str(e.value)
    assert (
        load_settings(ApiSettings, environ={"DRIFTLINE_LOGIN_FAILURES_PER_MINUTE": "0"}).login_failures_per_minute == 0
    )


def test_list_settings_from_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process environment is read once, by load_settings, in the documented forms (comma
    separated lists); before, pydantic-settings read it a second time as JSON and refused them."""
    monkeypatch.setenv("DRIFTLINE_REDACT", "email, api_key")
    monkeypatch.setenv("DRIFTLINE_JUDGE_ENDPOINTS", "https://api.openai.com/v1,http://127.0.0.1:8000/v1")
    s = load_settings(CollectorSettings)
    assert s.redact == ["email", "api_key"]
    assert s.judge_endpoints == ["https://api.openai.com/v1", "http://127.0.0.1:8000/v1"]
    # An `environ` given is the whole environment: the process's is not read besides it.
    assert load_settings(CollectorSettings, environ={}).redact == []


def test_bad_key_error_never_echoes_the_secret() -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(CollectorSettings, environ={"DRIFTLINE_API_KEYS": "good=acme,supersecretvalue"})
    assert "supersecretvalue" not in str(e.value)
    assert "entry 2" in str(e.value)


def test_cross_field_rule() -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(
            CollectorSettings,
            environ={"DRIFTLINE_BATCH_MAX_SPANS": "500", "DRIFTLINE_QUEUE_CAPACITY_SPANS": "100"},
        )
    assert "batch_max_spans" in str(e.value)


def test_yaml_file(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("http_port: 5000\napi_keys:\n  k1: acme\n")
    s = load_settings(CollectorSettings, f, environ={"DRIFTLINE_HTTP_PORT": "6000"})
    assert s.http_port == 6000  # environment beats the file
    assert list(s.tenants_by_key_hash().values()) == ["acme"]

    f.write_text("http_port: 5000\nbogus_key: 1\n")
    with pytest.raises(ConfigError, match="bogus_key"):
        load_settings(CollectorSettings, f, environ={})
    f.write_text("grpc_port: [1, 2]\n")
    with pytest.raises(ConfigError, match="grpc_port"):
        load_settings(CollectorSettings, f, environ={})
    f.write_text("{ not yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(CollectorSettings, f, environ={})


def test_every_field_has_a_description() -> None:
    for name, field in UpSettings.model_fields.items():
        assert field.description, name


def test_masked_dump_hides_secrets() -> None:
    s = load_settings(
        UpSettings,
        environ={
            "DRIFTLINE_API_KEYS": "topsecret=acme",
            "DRIFTLINE_CLICKHOUSE_URL": "https://u:hunter2@h:8443",
        },
    )
    text = str(masked_dump(s))
    assert "topsecret" not in text and "hunter2" not in text
    assert "***(1 keys)" in text and "https://u:***@h:8443" in text


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "driftline.cli", *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_cli_config_show_and_bad_value(tmp_path: Path) -> None:
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    ok = _cli("config", "show", env={**base, "DRIFTLINE_API_KEYS": "sekrit=acme"})
    assert ok.returncode == 0, ok.stderr
    assert "sekrit" not in ok.stdout and '"http_port": 4318' in ok.stdout
    bad = _cli("config", "show", env={**base, "DRIFTLINE_HTTP_PORT": "x"})
    assert bad.returncode == 2
    assert "DRIFTLINE_HTTP_PORT" in bad.stderr and "Traceback" not in bad.stderr
    unknown = _cli("up", env={**base, "DRIFTLINE_NOPE": "1"})
    assert unknown.returncode == 2 and "DRIFTLINE_NOPE" in unknown.stderr


def test_docs_list_every_setting() -> None:
    from driftline.config import config_markdown

    doc = (Path(__file__).parent.parent / "docs" / "config.md").read_text()
    assert doc == config_markdown(), "regenerate: python -m driftline.config > docs/config.md"


def _plain(value: object) -> object:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def test_docs_defaults_are_real_values() -> None:
    """Every default docs/config.md shows, set back through the environment, is the default."""
    import driftline.config as config

    checked = 0
    cls: Any = None
    for line in config.config_markdown().splitlines():
        if line.startswith("## "):
            cls = getattr(config, line[3:])
            continue
        if not line.startswith("| `DRIFTLINE_"):
            continue
        var, shown = (cell.strip() for cell in line.split("|")[1:3])
        var = var.strip("`")
        name = var.removeprefix("DRIFTLINE_").lower()
        default = _plain(getattr(load_settings(cls, environ={}), name))
        assert "Undefined" not in shown, var
        if shown == "(none)":
            assert default in ("", None, [], {}), var
        else:
            assert shown.startswith("`") and shown.endswith("`"), var
            assert _plain(getattr(load_settings(cls, environ={var: shown.strip("`")}), name)) == default, var
        checked += 1
    assert checked == len(config._known_fields())


def test_nested_scorer_config_error_names_the_key() -> None:
    from driftline.config import ScorerSettings

    with pytest.raises(ConfigError) as e:
        load_settings(ScorerSettings, environ={"DRIFTLINE_SCORERS": '{"hallucination": {"sample_rat": 0.2}}'})
    assert "DRIFTLINE_SCORERS" in str(e.value) and "hallucination.sample_rat" in str(e.value)
    with pytest.raises(ConfigError, match="replica_index"):
        load_settings(ScorerSettings, environ={"DRIFTLINE_REPLICA_INDEX": "2", "DRIFTLINE_REPLICA_COUNT": "2"})


def test_one_file_for_every_service_and_show_with_scorers(tmp_path: Path) -> None:
    from driftline.config import CommonSettings

    f = tmp_path / "all.yaml"
    f.write_text("retention_days: 7\nhttp_port: 9999\nscorers:\n  hallucination: {sample_rate: 0.5}\n")
    common = load_settings(CommonSettings, f, environ={})  # collector and scorer keys are not its own
    assert common.retention_days == 7
    up = load_settings(UpSettings, f, environ={})
    assert masked_dump(up)["scorers"] == {"hallucination": up.scorers["hallucination"].model_dump(mode="json")}


def test_price_overrides_from_the_environment() -> None:
    env = {"DRIFTLINE_PRICE_OVERRIDES": '{"vllm/llama-3-8b": {"input_mtok": 0.1, "output_mtok": 0.2}}'}
    prices = load_settings(CollectorSettings, environ=env).model_prices()
    assert prices["vllm/llama-3-8b"].input_mtok == 0.1 and prices["vllm/llama-3-8b"].cache_read_mtok is None
