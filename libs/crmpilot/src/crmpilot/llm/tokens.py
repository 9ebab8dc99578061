"""Token estimates: budget a request before it is sent, and cost it when the endpoint reports no usage.

Uses ``tiktoken`` when it is installed (exact for OpenAI models); otherwise a
character heuristic (about four characters per token for English, rounded up),
good enough to reserve rate-limit budget, which is corrected with the real usage
after the call.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

__all__ = ["estimate_tokens"]


@lru_cache(maxsize=8)
def _encoding(model: str) -> Any:
    try:
        import tiktoken  # type: ignore[import-not-found]  # an optional dependency, without stubs
    except ImportError:
        return None
    try:
        try:
            return tiktoken.encoding_for_model(model)
        except KeyError:
            return tiktoken.get_encoding("o200k_base")
    except Exception:  # noqa: BLE001 - tiktoken fetches its tables on first use; offline, fall back
        return None


def estimate_tokens(text: str, model: str = "gpt-4o-mini") -> int:
    """Tokens ``text`` is likely to take on ``model``."""
    if not text:
        return 0
    enc = _encoding(model)
    if enc is not None:
        return len(enc.encode(text))
    return math.ceil(len(text) / 4)
