"""Cost accounting: US dollars per call from a price table (USD per 1M input/output tokens).

The defaults are list prices of a few common OpenAI models at the time of writing;
prices change, so deployments pass their own table (``CRMPILOT_LLM_PRICES`` as
JSON, see :class:`crmpilot.llm.settings.LLMSettings`). A model name matches its
longest listed prefix, so a dated snapshot (``gpt-4o-mini-2024-07-18``) costs
what ``gpt-4o-mini`` costs. The embedded local provider costs nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

__all__ = ["Price", "PriceTable", "DEFAULT_PRICES", "FREE_PROVIDERS"]

log = logging.getLogger(__name__)

_MILLION = Decimal(1_000_000)

FREE_PROVIDERS: frozenset[str] = frozenset({"local"})
"""Providers whose calls cost nothing (they run in-process)."""


@dataclass(frozen=True, slots=True)
class Price:
    """USD per one million tokens."""

    input: Decimal
    output: Decimal

    def cost(self, tokens_in: int, tokens_out: int) -> Decimal:
        return (self.input * tokens_in + self.output * tokens_out) / _MILLION


def _p(i: str, o: str) -> Price:
    return Price(Decimal(i), Decimal(o))


_DEFAULTS: dict[str, Price] = {
    "gpt-5": _p("1.25", "10.00"),
    "gpt-5-mini": _p("0.25", "2.00"),
    "gpt-5-nano": _p("0.05", "0.40"),
    "gpt-4.1": _p("2.00", "8.00"),
    "gpt-4.1-mini": _p("0.40", "1.60"),
    "gpt-4.1-nano": _p("0.10", "0.40"),
    "gpt-4o": _p("2.50", "10.00"),
    "gpt-4o-mini": _p("0.15", "0.60"),
    "o4-mini": _p("1.10", "4.40"),
    "gpt-3.5-turbo": _p("0.50", "1.50"),
}


class PriceTable:
    """Model name → :class:`Price`, by longest prefix; unknown models cost 0 (warned once)."""

    def __init__(
        self, prices: Mapping[str, Price] | None = None, *, free_providers: frozenset[str] = FREE_PROVIDERS
    ) -> None:
        self._prices = dict(_DEFAULTS if prices is None else prices)
        self._free = free_providers
        self._warned: set[str] = set()

    def with_prices(self, prices: Mapping[str, Price]) -> PriceTable:
        """A copy with ``prices`` added or overriding."""
        return PriceTable({**self._prices, **prices}, free_providers=self._free)

    def price(self, model: str) -> Price | None:
        best = None
        for name, price in self._prices.items():
            if model == name or model.startswith(name + "-") or model.startswith(name + ":"):
                if best is None or len(name) > len(best[0]):
                    best = (name, price)
        return best[1] if best else None

    def cost(self, provider: str, model: str, tokens_in: int, tokens_out: int) -> Decimal:
        """USD for ``tokens_in``/``tokens_out`` on ``model`` (0 for free providers)."""
        if provider in self._free:
            return Decimal(0)
        price = self.price(model)
        if price is None:
            if model not in self._warned:
                self._warned.add(model)
                log.warning("no price for model %r; its calls are costed at 0 USD", model)
            return Decimal(0)
        return price.cost(tokens_in, tokens_out)

    def __contains__(self, model: str) -> bool:
        return self.price(model) is not None


DEFAULT_PRICES = PriceTable()
