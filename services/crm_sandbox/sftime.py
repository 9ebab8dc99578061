"""Salesforce's wire formats for dateTime and date values.

The REST API writes dateTime as `2024-05-01T10:00:00.000+0000` (always UTC,
milliseconds, no colon in the offset) and accepts ISO 8601 with `Z` or any
offset on input; dates are `YYYY-MM-DD`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

__all__ = ["format_datetime", "parse_date", "parse_datetime"]


def format_datetime(value: datetime) -> str:
    """A dateTime as the API writes it, converted to UTC."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def parse_datetime(text: str, *, naive_is_utc: bool = False) -> datetime | None:
    """An ISO 8601 dateTime with an offset or `Z`; None if it is not one.

    Record writes accept a dateTime without offset as UTC (`naive_is_utc`);
    SOQL literals must carry one.
    """
    candidate = text.strip()
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    elif len(candidate) > 5 and candidate[-5] in "+-" and candidate[-4:].isdigit():
        candidate = f"{candidate[:-2]}:{candidate[-2:]}"
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError:
        return None
    if "T" not in candidate.upper():
        return None
    if parsed.tzinfo is None:
        if not naive_is_utc:
            return None
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_date(text: str) -> date | None:
    """A `YYYY-MM-DD` date; None if it is not one."""
    try:
        return date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None
