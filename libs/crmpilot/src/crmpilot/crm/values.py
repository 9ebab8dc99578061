"""CRM field values as the audit log keeps them: text, compared and written back faithfully.

The audit stores every before/after value as text (``json.dumps`` for booleans
and numbers, ``str`` otherwise). Reverting and feedback detection need the way
back: is the value the CRM holds now the one we wrote (``0.9`` and ``"0.9"``,
``87`` and ``87.0`` are the same number, ``a;b`` and ``b;a`` the same values of a
multi-select picklist, though not of a text field), and which typed value restores an audited one.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["to_audit_text", "same_value", "from_audit_text"]


def to_audit_text(value: Any) -> str | None:
    """Audit values are stored as text, exactly as a revert must write them back."""
    if value is None:
        return None
    return json.dumps(value) if isinstance(value, bool | int | float) else str(value)


def same_value(current: Any, audited: str | None, *, multi_select: bool = False) -> bool:
    """Whether the CRM's ``current`` value equals an audited text value; a ``multi_select`` field's values are
    compared as a set (any other text exactly: ``a; b`` and ``b; a`` are two texts)."""
    if current is None or audited is None:
        return current is None and audited is None
    if isinstance(current, bool):
        return json.dumps(current) == audited
    if isinstance(current, int | float):
        try:
            return float(current) == float(audited)
        except ValueError:
            return False
    text = str(current)
    if text == audited:
        return True
    return multi_select and _selected(text) == _selected(audited)


def _selected(text: str) -> frozenset[str]:
    """A multi-select picklist's values (``a;b``): an org may return them in another order than they were written."""
    return frozenset(v.strip() for v in text.split(";") if v.strip())


def from_audit_text(text: str | None, *, like: Any) -> Any:
    """The typed value of an audited ``text``, of the same kind as ``like`` (a value the field holds)."""
    if text is None:
        return None
    if isinstance(like, bool):
        return text == "true"
    if isinstance(like, int | float):
        number = float(text)
        return int(number) if number.is_integer() and isinstance(like, int) else number
    return text
