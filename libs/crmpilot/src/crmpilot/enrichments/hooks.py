"""Named Python hooks: the logic a spec cannot declare (a derived field, an extra check).

A hook is registered by name and listed in a spec's ``hooks``; it runs after the
model's answer was validated, gets the answer's outputs and the inputs the model
saw, and returns the outputs (changed or not). The result is validated against
the spec's output model again, so a hook cannot put a value outside the
vocabulary either. An unknown hook name is refused when the service starts.

```python
from crmpilot.enrichments.hooks import hook

@hook("urgent_means_high")
def _(outputs, inputs):
    if "urgent" in inputs.get("subject", "").lower():
        outputs["priority"] = "High"
    return outputs
```
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Hook", "HOOKS", "hook", "resolve"]

Hook = Callable[[dict[str, Any], Mapping[str, Any]], dict[str, Any]]
HOOKS: dict[str, Hook] = {}


def hook(name: str) -> Callable[[Hook], Hook]:
    """Register ``fn`` as the hook called ``name``."""

    def register(fn: Hook) -> Hook:
        if name in HOOKS and HOOKS[name] is not fn:
            raise ValueError(f"a hook called {name!r} is already registered")
        HOOKS[name] = fn
        return fn

    return register


def resolve(names: tuple[str, ...]) -> tuple[tuple[Hook, ...], list[str]]:
    """The hooks of ``names``, and the names no hook is registered under."""
    return tuple(HOOKS[n] for n in names if n in HOOKS), [n for n in names if n not in HOOKS]
