"""Pricer: the same figures as genai-prices' own calc_price, overrides, unknown models."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from genai_prices import Usage, calc_price, data_snapshot
from genai_prices.data import providers
from genai_prices.types import ConditionalPrice, ModelInfo, TimeOfDateConstraint

from driftline.pricing import ModelPrice, Pricer

AT = datetime(2025, 10, 9, 12, 0, tzinfo=UTC)


def _gp(
    model: str,
    provider: str | None,
    inp: int,
    out: int,
    read: int = 0,
    write: int = 0,
    reasoning: int = 0,
    at: datetime = AT,
) -> float:
    usage = Usage(
        input_tokens=inp,
        output_tokens=out,
        cache_read_tokens=read or None,
        cache_write_tokens=write or None,
        output_reasoning_tokens=reasoning or None,
    )
    return float(calc_price(usage, model, provider_id=provider, genai_request_timestamp=at).total_price)


@pytest.mark.parametrize(
    ("provider", "gp_provider", "model", "counts"),
    [
        ("openai", "openai", "gpt-4o-mini", (1000, 500, 200, 0, 0)),
        ("openai", "openai", "gpt-4o-mini-2024-07-18", (57, 17, 20, 0, 5)),
        ("openai", "openai", "o3-mini", (2000, 3000, 0, 0, 2500)),
        ("anthropic", "anthropic", "claude-sonnet-4-5", (10_000, 800, 4000, 1000, 0)),
        ("anthropic", "anthropic", "claude-sonnet-4-5", (300_000, 800, 4000, 1000, 0)),  # long-context tier
        ("gcp.gemini", "google", "gemini-2.5-pro", (250_000, 1000, 0, 0, 300)),
        ("aws.bedrock", "aws", "anthropic.claude-3-5-sonnet-20240620-v1:0", (1500, 300, 0, 0, 0)),
        ("azure.ai.openai", "azure", "gpt-4o", (1500, 300, 100, 0, 0)),
        ("", None, "gpt-4o", (1500, 300, 0, 0, 0)),  # no provider: genai-prices matches by model name
    ],
)
def test_same_figure_as_genai_prices(
    provider: str, gp_provider: str | None, model: str, counts: tuple[int, int, int, int, int]
) -> None:
    inp, out, read, write, reasoning = counts
    cost, source = Pricer().price(provider, model, inp, out, read, write, AT, reasoning_tokens=reasoning)
    assert source == "price_table"
    assert cost == _gp(model, gp_provider, inp, out, read, write, reasoning)


def _all_models() -> Iterator[tuple[str, ModelInfo]]:
    for p in providers:
        for m in p.models:
            yield p.id, m


def test_every_bundled_model_matches_calc_price() -> None:
    """The Pricer's own arithmetic (used for the common price shapes) against genai-prices'."""
    pricer = Pricer()
    checked = 0
    for provider_id, model in _all_models():
        usage = (123_456, 7_890, 23_456, 1_234, 890)
        try:
            expected = _gp(model.id, provider_id, *usage)
        except (LookupError, ValueError):
            continue  # e.g. models priced per request / per character: not token-priced
        cost, _ = pricer.price(provider_id, model.id, *usage[:4], AT, reasoning_tokens=usage[4])
        assert cost == expected, (provider_id, model.id)
        checked += 1
    assert checked > 1000


def test_time_of_day_prices_follow_the_span_time() -> None:
    model = next(
        m
        for _, m in _all_models()
        if isinstance(m.prices, list)
        and any(isinstance(c, ConditionalPrice) and isinstance(c.constraint, TimeOfDateConstraint) for c in m.prices)
    )
    provider_id = next(p.id for p in providers if model in p.models)
    pricer = Pricer()
    for hour in (2, 14):
        at = datetime(2025, 10, 9, hour, 30, tzinfo=UTC)
        cost, _ = pricer.price(provider_id, model.id, 10_000, 1000, at=at)
        assert cost == _gp(model.id, provider_id, 10_000, 1000, at=at)
    ns = int(datetime(2025, 10, 9, 2, 30, tzinfo=UTC).timestamp()) * 10**9
    counts = (10_000, 1000, 0, 0, 0)
    assert (
        pricer.price_counts(provider_id, model.id, counts, ns)[0]
        == pricer.price(provider_id, model.id, 10_000, 1000, at=datetime(2025, 10, 9, 2, 30, tzinfo=UTC))[0]
    )


def test_override_changes_the_price() -> None:
    pricer = Pricer(
        overrides={
            "gpt-4o-mini": ModelPrice(input_mtok=1.0, output_mtok=4.0, cache_read_mtok=0.5),
            "vllm/Llama-3-8B": ModelPrice(input_mtok=0.1, output_mtok=0.2),
        }
    )
    cost, source = pricer.price("openai", "GPT-4o-mini", 1000, 100, 400)
    assert source == "override"
    assert cost == pytest.approx((600 * 1.0 + 400 * 0.5 + 100 * 4.0) / 1e6)
    cost, source = pricer.price("vllm", "llama-3-8b", 1000, 100, 400, 50)  # cache billed at input price
    assert source == "override"
    assert cost == pytest.approx((1000 * 0.1 + 100 * 0.2) / 1e6)
    assert pricer.price("other", "llama-3-8b", 1000, 100) == (None, "")


def test_unknown_models_are_counted() -> None:
    pricer = Pricer()
    assert pricer.unknown_model_lookups == 0
    assert pricer.price("openai", "my-finetune-xyz", 10, 10) == (None, "")
    assert pricer.price("ollama", "llama3", 10, 10) == (None, "")  # no cloud price for a self-hosted model
    assert pricer.price("openai", "", 10, 10) == (None, "")
    assert pricer.unknown_model_lookups == 3


def test_inconsistent_usage_gets_no_price() -> None:
    assert Pricer().price("openai", "gpt-4o-mini", 10, 10, cache_read_tokens=50) == (None, "")


def test_bundled_snapshot_even_if_someone_started_the_updater() -> None:
    """genai-prices only fetches prices when UpdatePrices is started; a started updater (or any
    custom snapshot) must not change what the Pricer uses."""
    empty = data_snapshot.DataSnapshot(providers=[], from_auto_update=True)
    data_snapshot.set_custom_snapshot(empty)
    try:
        cost, _ = Pricer().price("openai", "gpt-4o-mini", 1000, 100, at=AT)
    finally:
        data_snapshot.set_custom_snapshot(None)
    assert cost == _gp("gpt-4o-mini", "openai", 1000, 100)


def test_decimal_prices_with_many_decimals_still_match() -> None:
    """Prices are turned into exact integers; a price with more decimals than that falls back."""
    from driftline.pricing import _compile_price

    with pytest.raises(ValueError, match="decimals"):
        _compile_price(Decimal("0.0000000000001"))
