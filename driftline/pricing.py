"""Cost of an LLM call from the genai-prices table, with per-model overrides.

genai-prices (https://github.com/pydantic/genai-prices) ships a price snapshot inside the
package; it only fetches newer prices from the network when `genai_prices.UpdatePrices` is
started, which nothing here does. The `Pricer` goes further and builds its own `DataSnapshot`
from the bundled data, so even if some other code in the process starts the updater, prices
stay the reviewed, versioned snapshot and no request leaves the machine.

Speed: `genai_prices.calc_price` costs ~50 us (usage validation, unit-registry walks). The
normalizer prices every LLM span, so the Pricer resolves (provider, model) once and caches it,
and computes the common price shapes (input / output / cache read / cache write / reasoning,
flat or tiered) directly with the same Decimal arithmetic; anything else (audio, images,
per-request fees...) goes through genai-prices' own `ModelPrice.calc_price`. tests/test_pricing.py
checks the direct path against `calc_price` for every model in the snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final, TypeAlias

from genai_prices import Usage, data_snapshot
from genai_prices.data import providers as _bundled_providers
from genai_prices.types import ModelInfo, Provider, TieredPrices
from genai_prices.types import ModelPrice as GpModelPrice

__all__ = ["PROVIDER_IDS", "ModelPrice", "Pricer"]

# GenAI semconv gen_ai.provider.name -> genai-prices provider id.
PROVIDER_IDS: Final[dict[str, str]] = {
    "openai": "openai",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "anthropic": "anthropic",
    "aws.bedrock": "aws",
    "gcp.vertex_ai": "google",
    "gcp.gemini": "google",
    "gcp.gen_ai": "google",
    "cohere": "cohere",
    "x_ai": "x-ai",
    "deepseek": "deepseek",
    "groq": "groq",
    "mistral_ai": "mistral",
    "perplexity": "perplexity",
}

# Prices are per million tokens; they are held as integers of 10^-_SCALE USD so a cost is
# exact integer arithmetic plus one division.
_SCALE: Final = 12
_DIVISOR: Final = 10 ** (_SCALE + 6)
# Price keys the direct path understands. Keys for usage we never report (searches, 1h cache
# writes, ...) price zero units in genai-prices too, so they are ignored.
_DIRECT: Final = frozenset(
    {"input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok", "output_reasoning_mtok"}
)
_ZERO_USAGE: Final = frozenset(
    {
        "web_searches_kcount",
        "storage_searches_kcount",
        "social_searches_kcount",
        "code_executions_kcount",
        "rerank_searches_kcount",
        "cache_write_1h_mtok",
        "cache_write_5m_mtok",
    }
)
_MAX_CACHE: Final = 10_000

_Price: TypeAlias = Decimal | TieredPrices
# A compiled rate: scaled int, or (base, ((tier_start, rate), ...) highest tier first).
_Rate = int | tuple[int, tuple[tuple[int, int], ...]]
# (input, output, cache_read, cache_write, reasoning) rates, None = not priced.
_Direct = tuple[_Rate | None, _Rate | None, _Rate | None, _Rate | None, _Rate | None]


@dataclass(frozen=True)
class ModelPrice:
    """An override price in USD per million tokens (for custom, fine-tuned or self-hosted models).

    Cache reads / writes without their own price are billed at the input price.
    """

    input_mtok: float
    output_mtok: float
    cache_read_mtok: float | None = None
    cache_write_mtok: float | None = None


class Pricer:
    """Prices token usage; `price()` returns (cost_usd, source) with source 'price_table' or 'override'.

    `unknown_model_lookups` counts calls that found no price (the metrics layer exports it).
    """

    def __init__(self, overrides: Mapping[str, ModelPrice] | None = None) -> None:
        # Keys are "model" or "provider/model" (provider as in the `provider` column), any case.
        self.overrides: dict[str, ModelPrice] = {k.lower(): v for k, v in (overrides or {}).items()}
        self.unknown_model_lookups = 0
        self._snapshot = data_snapshot.DataSnapshot(providers=_bundled_providers, from_auto_update=False)
        self._models: dict[tuple[str, str], tuple[Provider, ModelInfo] | None] = {}
        self._direct: dict[int, tuple[GpModelPrice, _Direct | None]] = {}

    def override_for(self, provider: str, model: str) -> ModelPrice | None:
        if not self.overrides or not model:
            return None
        low = model.lower()
        return self.overrides.get(f"{provider.lower()}/{low}") or self.overrides.get(low)

    def price(
        self,
        provider: str,
        model: str,
        input_tokens: int | None,
        output_tokens: int | None,
        cache_read_tokens: int | None = None,
        cache_creation_tokens: int | None = None,
        at: datetime | None = None,
        *,
        reasoning_tokens: int | None = None,
    ) -> tuple[float | None, str]:
        """Cost in USD of one call; (None, '') when the model has no known price.

        Token counts follow driftline/store/columns.py: input includes cached tokens, output
        includes reasoning tokens. `at` selects time-dependent prices (None: now).
        """
        counts = (
            input_tokens or 0,
            output_tokens or 0,
            cache_read_tokens or 0,
            cache_creation_tokens or 0,
            reasoning_tokens or 0,
        )
        return self.price_counts(provider, model, counts, at)

    def price_counts(
        self, provider: str, model: str, counts: tuple[int, int, int, int, int], at: datetime | int | None
    ) -> tuple[float | None, str]:
        """The core of `price()`: counts are (input, output, cache_read, cache_creation, reasoning);
        `at` is a datetime, OTLP unix nanoseconds (the normalizer's hot path: no datetime is built
        unless the model's price depends on the date), or None for now."""
        if self.overrides:
            override = self.override_for(provider, model)
            if override is not None:
                return _override_cost(override, counts), "override"
        found = self._lookup(provider, model)
        if found is None:
            self.unknown_model_lookups += 1
            return None, ""
        gp_provider, info = found
        prices = info.prices
        when: datetime | None = None
        if not isinstance(prices, GpModelPrice):  # date / time-of-day dependent: needs the time
            when = _as_datetime(at)
            prices = info.get_prices(when)
        direct = self._compiled(prices)
        try:
            if direct is not None:
                return _direct_cost(direct, counts), "price_table"
            inp, out, read, write, reasoning = counts
            usage = Usage(
                input_tokens=inp,
                output_tokens=out,
                cache_read_tokens=read or None,
                cache_write_tokens=write or None,
                output_reasoning_tokens=reasoning or None,
            )
            calc = info.calc_price(usage, gp_provider, genai_request_timestamp=when or _as_datetime(at))
        except ValueError:  # inconsistent usage (e.g. cached > input): no price rather than a wrong one
            return None, ""
        return float(calc.total_price), "price_table"

    def engine_rates(self, provider: str, model: str) -> tuple[int, tuple[int | None, ...]]:
        """How the engine prices (provider, model) (store/ingest_cost.py): (1, ()) no price; (2,
        the five scaled rates of `_direct_cost`, input / output / cache read / cache write /
        reasoning, None where not priced); (3, ()) a price only this class computes (date
        dependent, tiered, or beyond the direct path). Overrides are not consulted here."""
        found = self._lookup(provider, model)
        if found is None:
            return 1, ()
        prices = found[1].prices
        if not isinstance(prices, GpModelPrice):
            return 3, ()
        direct = self._compiled(prices)
        if direct is None or any(isinstance(r, tuple) for r in direct):
            return 3, ()
        return 2, tuple(r if isinstance(r, int) else None for r in direct)

    def _lookup(self, provider: str, model: str) -> tuple[Provider, ModelInfo] | None:
        key = (provider, model)
        try:
            return self._models[key]
        except KeyError:
            pass
        found = self._resolve(provider, model)
        if len(self._models) < _MAX_CACHE:  # bounded: model names come from untrusted spans
            self._models[key] = found
        return found

    def _resolve(self, provider: str, model: str) -> tuple[Provider, ModelInfo] | None:
        """A known provider is searched (with its own fallbacks, e.g. Azure -> OpenAI models);
        an unknown one is not guessed at, since a self-hosted model would get a cloud price. With
        no provider at all, genai-prices matches the model name across providers."""
        if not model:
            return None
        provider_id: str | None = PROVIDER_IDS.get(provider, provider) if provider else None
        try:
            return self._snapshot.find_provider_model(model, None, provider_id, None)
        except LookupError:
            return None

    def _compiled(self, prices: GpModelPrice) -> _Direct | None:
        hit = self._direct.get(id(prices))
        if hit is not None and hit[0] is prices:
            return hit[1]
        direct = _compile(prices)
        self._direct[id(prices)] = (prices, direct)  # keeps `prices` alive, so the id stays unique
        return direct


def _scaled(price: Decimal) -> int:
    """A per-million-token price as an exact integer count of 10^-SCALE USD; ValueError if inexact."""
    scaled = price.scaleb(_SCALE)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"price {price} has more than {_SCALE} decimals")
    return int(scaled)


def _compile_price(price: _Price | None) -> _Rate | None:
    if price is None:
        return None
    if isinstance(price, TieredPrices):
        return (_scaled(price.base), tuple((t.start, _scaled(t.price)) for t in reversed(price.tiers)))
    return _scaled(price)


def _compile(prices: GpModelPrice) -> _Direct | None:
    values = {k: v for k, v in prices.__dict__.items() if not k.startswith("_") and v is not None}
    if not set(values) <= _DIRECT | _ZERO_USAGE:
        return None
    try:
        return (
            _compile_price(values.get("input_mtok")),
            _compile_price(values.get("output_mtok")),
            _compile_price(values.get("cache_read_mtok")),
            _compile_price(values.get("cache_write_mtok")),
            _compile_price(values.get("output_reasoning_mtok")),
        )
    except ValueError:
        return None


def _rate(rate: _Rate, total_input: int) -> int:
    """genai-prices' calc_unit_price: a crossed tier prices *all* tokens at the tier rate."""
    if isinstance(rate, int):
        return rate
    base, tiers = rate
    for start, tier_rate in tiers:  # highest tier first
        if total_input > start:
            return tier_rate
    return base


def _direct_cost(d: _Direct, counts: tuple[int, int, int, int, int]) -> float:
    """Exact integer arithmetic, then one correctly rounded division: the same float as
    float(genai-prices' Decimal total), whose terms are exact too, but ~5x faster."""
    inp, out, read, write, reasoning = counts
    in_rate, out_rate, read_rate, write_rate, reasoning_rate = d
    # Leaf counts as genai-prices computes them: a priced sub-kind is taken out of its parent.
    plain_in = inp - (read if read_rate is not None else 0) - (write if write_rate is not None else 0)
    plain_out = out - (reasoning if reasoning_rate is not None else 0)
    if plain_in < 0 or plain_out < 0:
        raise ValueError("cached tokens exceed input tokens, or reasoning tokens exceed output tokens")
    total = 0
    for rate, count in (
        (in_rate, plain_in),
        (read_rate, read),
        (write_rate, write),
        (out_rate, plain_out),
        (reasoning_rate, reasoning),
    ):
        if rate is not None and count:
            total += _rate(rate, inp) * count
    return total / _DIVISOR


def _as_datetime(at: datetime | int | None) -> datetime:
    if at is None:
        return datetime.now(tz=UTC)
    if isinstance(at, int):
        return datetime.fromtimestamp(at / 1e9, tz=UTC)
    return at


def _override_cost(p: ModelPrice, counts: tuple[int, int, int, int, int]) -> float:
    inp, out, read, write, _ = counts
    read_rate = p.input_mtok if p.cache_read_mtok is None else p.cache_read_mtok
    write_rate = p.input_mtok if p.cache_write_mtok is None else p.cache_write_mtok
    plain = max(inp - read - write, 0)
    return (plain * p.input_mtok + read * read_rate + write * write_rate + out * p.output_mtok) / 1e6
