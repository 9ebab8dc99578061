"""What a dead-letter record carries: the original record plus why and where it failed.

A record that cannot be processed (poison, or retries exhausted) is produced to
``<source topic><dlq_suffix>`` with its original key, value and headers, and
these headers added (values UTF-8):

=============================  ==============================================
``crmpilot.error.class``       fully qualified exception class
``crmpilot.error.code``        the error's ``code`` (e.g. ``invalid_json``), else
                               ``retries_exhausted`` / ``unhandled_exception``
``crmpilot.error.message``     ``str(exc)``, at most 1000 characters
``crmpilot.error.stack``       the innermost frames, at most 2000 characters
``crmpilot.source.topic``      where the record came from …
``crmpilot.source.partition``  … its partition …
``crmpilot.source.offset``     … and offset
``crmpilot.attempts``          handler attempts made (0: never handled, e.g. poison)
``crmpilot.failed_at``         ISO 8601 UTC time of the decision
``crmpilot.consumer.group``    the consumer group that gave up
=============================  ==============================================

Earlier values of these headers (a record that failed again after a replay) are
replaced, other original headers (``traceparent``…) are kept as they were. A
dead-lettered *result* thus keeps its ``crmpilot.source.event_id``: the event
the result answers, whereas ``crmpilot.source.topic``/``partition``/``offset``
say where the dead-lettered record itself was read.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from datetime import datetime

from crmpilot.errors import Retryable

__all__ = ["DLQ_HEADERS", "dlq_headers", "error_code", "error_class"]

DLQ_HEADERS = (
    "crmpilot.error.class",
    "crmpilot.error.code",
    "crmpilot.error.message",
    "crmpilot.error.stack",
    "crmpilot.source.topic",
    "crmpilot.source.partition",
    "crmpilot.source.offset",
    "crmpilot.attempts",
    "crmpilot.failed_at",
    "crmpilot.consumer.group",
)

_MESSAGE_MAX = 1000
_STACK_MAX = 2000
_STACK_FRAMES = 6

Header = tuple[str, bytes | None]


def error_class(exc: BaseException) -> str:
    cls = type(exc)
    return f"{cls.__module__}.{cls.__qualname__}"


def error_code(exc: BaseException) -> str:
    """The error's own ``code`` when it has one, else what kind of failure it was."""
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code:
        return code
    return "retries_exhausted" if isinstance(exc, Retryable) else "unhandled_exception"


def _short_stack(exc: BaseException) -> str:
    text = "".join(traceback.format_exception(exc, limit=-_STACK_FRAMES, chain=False)).strip()
    return text if len(text) <= _STACK_MAX else "…" + text[-(_STACK_MAX - 1) :]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def dlq_headers(
    original: Sequence[Header] | None,
    error: BaseException,
    *,
    topic: str,
    partition: int,
    offset: int,
    attempts: int,
    group_id: str,
    failed_at: datetime,
) -> list[Header]:
    """The headers of the dead-letter record: the original ones plus the error context."""
    added = {
        "crmpilot.error.class": error_class(error),
        "crmpilot.error.code": error_code(error),
        "crmpilot.error.message": _clip(str(error) or error_class(error), _MESSAGE_MAX),
        "crmpilot.error.stack": _short_stack(error),
        "crmpilot.source.topic": topic,
        "crmpilot.source.partition": str(partition),
        "crmpilot.source.offset": str(offset),
        "crmpilot.attempts": str(attempts),
        "crmpilot.failed_at": failed_at.isoformat(),
        "crmpilot.consumer.group": group_id,
    }
    kept: list[Header] = [(k, v) for k, v in (original or ()) if k not in added]
    return kept + [(k, v.encode("utf-8")) for k, v in added.items()]
