"""Named Python hooks: the logic a spec cannot declare (a derived field, an extra check).

A hook is registered by name and listed in a spec's ``hooks``; it runs after the
model's answer was validated, gets the answer's outputs and the inputs the model
saw, and returns the outputs (changed or not). The result is validated against
the spec's output model again, so a hook cannot put a value outside the
vocabulary either. An unknown hook name is refused when the service starts.
A **derived output** (``outputs.<field>.derived_from``) is never asked of the model:
a hook must set it, else the record goes to the dead-letter topic.

A **local rule** answers one field on the local model where the embedding model
has no honest method (a next action from the risk, a flag from the email domain):
registered by name, named in ``outputs.<field>.local``, called with the inputs and
the answer so far; its value is validated with the rest of the answer.
On an OpenAI-compatible endpoint the model answers the field and the rule is not
called. An unknown rule name is refused when the service starts, like a hook.

A **local method** answers a whole spec on the local model (the spec's top-level
``local:``), with the provider's encoder: ``async method(provider, task, inputs)``
returns a :class:`~crmpilot.llm.base.LocalAnswer` whose output is the answer the
spec's output model wants (every field the model answers, derived ones excepted,
and its confidence). It is how a company plugs its own local model in.

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
from typing import TYPE_CHECKING, Any, TypeVar

from crmpilot.llm.base import LocalMethod

if TYPE_CHECKING:
    from .spec import EnrichmentSpec

__all__ = [
    "HOOKS",
    "LOCAL_METHODS",
    "LOCAL_RULES",
    "Hook",
    "LocalRule",
    "hook",
    "local_method",
    "local_rule",
    "resolve",
    "unknown_rules",
]

Hook = Callable[[dict[str, Any], Mapping[str, Any]], dict[str, Any]]
HOOKS: dict[str, Hook] = {}
LocalRule = Callable[[Mapping[str, Any], Mapping[str, Any]], tuple[Any, float]]
"""``rule(inputs, answer)`` -> ``(value, confidence)``: one field's answer on the local model, from the inputs the
model saw and the answer so far (every field without a rule, then the rule fields before it in the spec's order)."""
LOCAL_RULES: dict[str, LocalRule] = {}
LOCAL_METHODS: dict[str, LocalMethod] = {}


F = TypeVar("F", bound=Callable[..., Any])


def _registrar(registry: dict[str, F], what: str, name: str) -> Callable[[F], F]:
    def register(fn: F) -> F:
        if name in registry and registry[name] is not fn:
            raise ValueError(f"a {what} called {name!r} is already registered")
        registry[name] = fn
        return fn

    return register


def hook(name: str) -> Callable[[Hook], Hook]:
    """Register ``fn`` as the hook called ``name``."""
    return _registrar(HOOKS, "hook", name)


def local_rule(name: str) -> Callable[[LocalRule], LocalRule]:
    """Register ``fn`` as the local rule called ``name`` (a spec names it in ``outputs.<field>.local``)."""
    return _registrar(LOCAL_RULES, "local rule", name)


def local_method(name: str) -> Callable[[LocalMethod], LocalMethod]:
    """Register ``fn`` as the local method called ``name`` (a spec names it in its top-level ``local``)."""
    return _registrar(LOCAL_METHODS, "local method", name)


def unknown_rules(spec: EnrichmentSpec) -> list[str]:
    """The outputs of ``spec`` whose ``local`` rule is not registered."""
    return [name for name, out in spec.outputs.items() if out.local is not None and out.local not in LOCAL_RULES]


def resolve(names: tuple[str, ...]) -> tuple[tuple[Hook, ...], list[str]]:
    """The hooks of ``names``, and the names no hook is registered under."""
    return tuple(HOOKS[n] for n in names if n in HOOKS), [n for n in names if n not in HOOKS]
