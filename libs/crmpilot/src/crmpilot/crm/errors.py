"""CRM errors, translated at the adapter edge from the CRM's own error codes."""

from __future__ import annotations

from crmpilot.errors import CrmpilotError, Fatal, Retryable
from crmpilot.events.errors import PoisonMessage

__all__ = [
    "CRMError",
    "CRMUnavailable",
    "CRMLimitExceeded",
    "CRMRowLocked",
    "CRMAuthError",
    "CRMRejected",
    "CRMNotFound",
]


class CRMError(CrmpilotError):
    """Base of CRM errors. ``code`` is the CRM's error code when it gave one."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class CRMUnavailable(CRMError, Retryable):
    """The CRM did not answer, or answered 5xx."""

    def __init__(self, message: str, *, code: str | None = None, retry_after: float | None = None) -> None:
        CRMError.__init__(self, message, code=code)
        self.retry_after = retry_after


class CRMLimitExceeded(CRMUnavailable):
    """REQUEST_LIMIT_EXCEEDED: the org's API budget is spent; back off and pause."""


class CRMRowLocked(CRMUnavailable):
    """UNABLE_TO_LOCK_ROW: another transaction holds the record; retry."""


class CRMAuthError(CRMError, Fatal):
    """The session is invalid and re-authentication did not help."""


class CRMRejected(CRMError, PoisonMessage):
    """The CRM refused the change (validation, picklist, field errors): dead-letter it."""


class CRMNotFound(CRMError):
    """The record does not exist or was deleted."""
