"""Labelled tickets for training and evaluation: from CSV, JSONL, a PostgreSQL query or a SOQL query.

A row is a ticket and its final category. Text columns: ``text``, or
``subject`` and/or ``description``; label column: ``label``, ``category``,
``intent`` or ``final_category`` (the first present), or the one named. The
ticket text is built exactly as the local provider builds it
(:func:`crmpilot.tasks.local.classify.ticket_text`), so a head is trained on what
it will see. Rows without text or label are skipped and counted.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crmpilot.evaluation.errors import DatasetError
from crmpilot.tasks.local.classify import ticket_text

__all__ = [
    "LABEL_COLUMNS",
    "Dataset",
    "LabelledTicket",
    "dataset_from_rows",
    "read_labelled",
    "read_soql",
    "read_sql",
]

LABEL_COLUMNS = ("label", "category", "intent", "final_category")
_TEXT_COLUMNS = ("text", "subject", "description")


@dataclass(frozen=True, slots=True)
class LabelledTicket:
    subject: str
    description: str
    label: str

    @property
    def payload(self) -> dict[str, Any]:
        """The ``classify_ticket`` input, as a service would build it from a case."""
        return {"subject": self.subject, "description": self.description, "origin": "unknown", "is_vip": False}

    @property
    def text(self) -> str:
        """What the local model embeds."""
        return ticket_text(self.payload)


@dataclass(frozen=True, slots=True)
class Dataset:
    items: tuple[LabelledTicket, ...]
    source: str
    skipped: int = 0
    """Rows dropped for having no text or no label."""

    def __len__(self) -> int:
        return len(self.items)

    @property
    def labels(self) -> tuple[str, ...]:
        """Distinct labels, sorted."""
        return tuple(sorted({t.label for t in self.items}))

    @property
    def counts(self) -> Counter[str]:
        return Counter(t.label for t in self.items)

    @property
    def sha256(self) -> str:
        """Hash of the rows (text and label, in order): identifies the training data in an artefact."""
        h = hashlib.sha256()
        for t in self.items:
            h.update(json.dumps([t.subject, t.description, t.label], ensure_ascii=False).encode())
            h.update(b"\n")
        return h.hexdigest()

    def first(self, n: int | None) -> Dataset:
        """The first ``n`` items (all when ``n`` is ``None``)."""
        return self if n is None or n >= len(self.items) else Dataset(self.items[:n], self.source, self.skipped)


def _label_column(columns: Sequence[str], wanted: str | None, source: str) -> str:
    if wanted is not None:
        if wanted not in columns:
            raise DatasetError(f"{source}: no label column {wanted!r} (columns: {', '.join(columns)})")
        return wanted
    for name in LABEL_COLUMNS:
        if name in columns:
            return name
    raise DatasetError(
        f"{source}: no label column; expected one of {', '.join(LABEL_COLUMNS)} (columns: {', '.join(columns)})"
    )


def dataset_from_rows(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str], source: str, *, label_column: str | None = None
) -> Dataset:
    """A dataset from dict rows whose keys include ``columns``."""
    label = _label_column(columns, label_column, source)
    if not any(c in columns for c in _TEXT_COLUMNS):
        raise DatasetError(
            f"{source}: no text column; expected text, or subject and/or description (columns: {', '.join(columns)})"
        )
    items, skipped = [], 0
    for row in rows:
        subject = _str(row.get("subject"))
        description = _str(row.get("text")) or _str(row.get("description"))
        value = _str(row.get(label)).strip()
        if not value or not (subject.strip() or description.strip()):
            skipped += 1
            continue
        items.append(LabelledTicket(subject, description, value))
    if not items:
        raise DatasetError(f"{source}: no labelled rows" + (f" ({skipped} without text or label)" if skipped else ""))
    return Dataset(tuple(items), source, skipped)


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def read_labelled(path: Path | str, *, label_column: str | None = None) -> Dataset:
    """A CSV (header row) or JSONL (``.jsonl``/``.ndjson``, one object a line) file of labelled tickets."""
    p = Path(path)
    try:
        with p.open(encoding="utf-8", newline="") as f:
            if p.suffix.lower() in (".jsonl", ".ndjson", ".json"):
                rows = [_json_row(line, i, p) for i, line in enumerate(f, 1) if line.strip()]
                columns = list(dict.fromkeys(k for r in rows for k in r))
            else:
                reader = csv.DictReader(f)
                columns = list(reader.fieldnames or [])
                rows = list(reader)
    except FileNotFoundError as exc:
        raise DatasetError(f"no such file: {p}") from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"cannot read {p}: {exc}") from exc
    return dataset_from_rows(rows, columns, str(p), label_column=label_column)


def _json_row(line: str, number: int, path: Path) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}:{number}: not JSON: {exc.msg}") from exc
    if not isinstance(row, dict):
        raise DatasetError(f"{path}:{number}: expected a JSON object per line")
    return row


def read_sql(query: str, *, label_column: str | None = None, database_url: str | None = None) -> Dataset:
    """The rows of ``query`` on the warehouse (``CRMPILOT_DATABASE_URL`` unless ``database_url``).

    The query names its columns like a file does, e.g.
    ``select subject, description, category from warehouse.closed_cases``.
    """
    import psycopg
    from pydantic import SecretStr

    from crmpilot.settings import DatabaseSettings
    from crmpilot.warehouse import WarehouseError, connect

    settings = DatabaseSettings() if database_url is None else DatabaseSettings(url=SecretStr(database_url))
    try:
        with connect(settings) as conn, conn.cursor() as cur:
            cur.execute(query.encode())
            if cur.description is None:
                raise DatasetError("the query returned no rows (is it a SELECT?)")
            columns = [d.name for d in cur.description]
            rows = [dict(zip(columns, r, strict=True)) for r in cur.fetchall()]
    except WarehouseError as exc:
        raise DatasetError(str(exc)) from exc
    except psycopg.Error as exc:
        raise DatasetError(f"the query failed: {exc}".strip()) from exc
    return dataset_from_rows(rows, columns, "sql query", label_column=label_column)


def read_soql(
    query: str,
    *,
    label_column: str | None = None,
    sf: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> Dataset:
    """The records of a SOQL ``query`` on the CRM (``CRMPILOT_SALESFORCE_*`` unless ``sf``, a simple-salesforce client).

    Field names are matched without case, as Salesforce matches them: ``SELECT Subject, Description,
    AI_Category__c FROM Case WHERE IsClosed = true`` with ``label_column="AI_Category__c"``. Pages of
    2,000 records are followed to the end; ``progress(done, total)`` after each.
    """
    import requests
    from simple_salesforce.exceptions import SalesforceError

    from crmpilot.crm.connect import SalesforceSettings, connect
    from crmpilot.crm.errors import CRMError

    rows: list[dict[str, Any]] = []
    try:
        client = sf if sf is not None else connect(SalesforceSettings())
        page = client.query(query)
        total = int(page.get("totalSize", 0))
        while True:
            rows += [{k.lower(): v for k, v in r.items() if k != "attributes"} for r in page.get("records", [])]
            if progress is not None:
                progress(len(rows), max(total, len(rows)))
            if page.get("done", True) or not page.get("nextRecordsUrl"):
                break
            page = client.query_more(page["nextRecordsUrl"], identifier_is_url=True)
    except SalesforceError as exc:
        body = exc.content[0] if isinstance(exc.content, list) and exc.content else exc.content
        message = body.get("message", body) if isinstance(body, dict) else body
        shown = message.decode(errors="replace") if isinstance(message, bytes) else str(message)
        raise DatasetError(f"the SOQL query failed: {shown}") from exc
    except (CRMError, requests.RequestException) as exc:
        raise DatasetError(f"cannot read the CRM: {exc}") from exc
    if not rows:
        raise DatasetError(f"the SOQL query returned no records: {query}")
    columns = list(rows[0])
    wanted = label_column.lower() if label_column is not None else None
    return dataset_from_rows(rows, columns, "soql query", label_column=wanted)
