"""Which categories an evaluation or a trained head uses, and whether a dataset's labels fit them.

A categories file is JSON: a list of names (``["card_arrival", …]``, as
Banking77's ``categories.json``), a list of ``{"name", "description", "queue"}``
objects, or an object ``{name: description}``. Names without a description get
a readable one from the name (``card_arrival`` → "card arrival"), which is what
the zero-shot head compares tickets with.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from crmpilot.evaluation.errors import DatasetError
from crmpilot.llm.local.trained import categories_for
from crmpilot.tasks.taxonomy import DEFAULT_CATEGORIES, Category

__all__ = ["check_labels", "load_categories"]


def load_categories(path: Path | str) -> tuple[Category, ...]:
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DatasetError(f"no such categories file: {p}") from exc
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read categories from {p}: {exc}") from exc
    cats: list[Category] = []
    if isinstance(doc, dict):
        doc = [{"name": k, "description": v} for k, v in doc.items()]
    if not isinstance(doc, list) or not doc:
        raise DatasetError(f"{p}: expected a non-empty JSON list or object of categories")
    for entry in doc:
        if isinstance(entry, str):
            cats.append(categories_for([entry], DEFAULT_CATEGORIES)[0])
        elif isinstance(entry, dict) and isinstance(entry.get("name"), str):
            base = categories_for([entry["name"]], DEFAULT_CATEGORIES)[0]
            cats.append(
                Category(
                    base.name, str(entry.get("description") or base.description), str(entry.get("queue") or base.queue)
                )
            )
        else:
            raise DatasetError(f"{p}: each category is a name or an object with a name, got {entry!r}")
    if len({c.name for c in cats}) != len(cats):
        raise DatasetError(f"{p}: category names must be unique")
    return tuple(cats)


def check_labels(
    labels: Iterable[str], categories: tuple[Category, ...], source: str, *, out_of_scope: Iterable[str] = ()
) -> None:
    """Raise :class:`DatasetError` naming the labels that are not categories.

    ``out_of_scope``: labels that mark out-of-scope items; they must not be categories.
    """
    names = {c.name for c in categories}
    marked = set(out_of_scope)
    if clash := sorted(marked & names):
        raise DatasetError(
            f"out-of-scope label(s) {', '.join(clash[:10])} are categories of the taxonomy: an out-of-scope "
            "item has no category"
        )
    present = set(labels)
    if present and present <= marked:
        raise DatasetError(f"{source}: every item is marked out of scope; an eval needs in-scope items too")
    unknown = sorted(present - names - marked)
    if unknown:
        shown = ", ".join(unknown[:10]) + (f" … ({len(unknown)} in all)" if len(unknown) > 10 else "")
        raise DatasetError(
            f"{source}: labels outside the taxonomy: {shown}; pass --categories or a head trained on them, "
            "or mark them out of scope (--oos-label, or the label __unknown__)"
        )
