"""Salesforce adapter of the CRM port, on simple-salesforce over Salesforce REST.

Reads and writes use sObject Collections (``composite/sobjects``): up to 200
records per API call, ``allOrNone=false`` so each record succeeds or fails alone.
Salesforce's error codes are translated here into :mod:`crmpilot.crm.errors`.
simple-salesforce re-logs in by itself only for credential logins and without a
bound; this adapter instead rebuilds the client through its factory at most
``max_reauth`` times per call, then gives up with :class:`CRMAuthError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from .errors import CRMAuthError, CRMLimitExceeded, CRMNotFound, CRMRejected, CRMRowLocked, CRMUnavailable
from .port import RecordRef, RecordState, RecordUpdate, UpdateOutcome

__all__ = ["SalesforceCRM", "BATCH_LIMIT", "CALL_OPTIONS"]

BATCH_LIMIT = 200
CALL_OPTIONS = "client=crmpilot"
_RETRYABLE_RECORD_CODES = {"UNABLE_TO_LOCK_ROW"}


def _parse_time(value: str) -> datetime:
    # Salesforce writes 2026-11-29T04:10:00.000+0000
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")


class SalesforceCRM:
    """The CRM port over Salesforce REST. ``connect`` builds a logged-in client."""

    def __init__(self, connect: Callable[[], Salesforce], *, user_id: str, max_reauth: int = 1) -> None:
        self._connect = connect
        self._sf: Salesforce | None = None
        self._user_id = user_id
        self._max_reauth = max_reauth
        self.api_calls = 0
        self.api_usage: str | None = None

    @property
    def user_id(self) -> str:
        return self._user_id

    def fetch(self, sobject: str, ids: Sequence[str], fields: Sequence[str]) -> dict[str, RecordState]:
        wanted = list(dict.fromkeys(["Id", "LastModifiedDate", "LastModifiedById", *fields]))
        states: dict[str, RecordState] = {}
        for start in range(0, len(ids), BATCH_LIMIT):
            chunk = ids[start : start + BATCH_LIMIT]
            path = f"composite/sobjects/{sobject}"
            rows = self._call(path, "GET", params={"ids": ",".join(chunk), "fields": ",".join(wanted)})
            for row in rows or []:
                if row is None:
                    continue
                ref = RecordRef(sobject, row["Id"])
                states[row["Id"]] = RecordState(
                    ref=ref,
                    fields={f: row.get(f) for f in fields},
                    last_modified=_parse_time(row["LastModifiedDate"]),
                    last_modified_by=row["LastModifiedById"],
                )
        return states

    def update(self, updates: Sequence[RecordUpdate]) -> list[UpdateOutcome]:
        outcomes: list[UpdateOutcome] = []
        for start in range(0, len(updates), BATCH_LIMIT):
            chunk = updates[start : start + BATCH_LIMIT]
            body = {
                "allOrNone": False,
                "records": [{"attributes": {"type": u.ref.sobject}, "id": u.ref.record_id, **u.values} for u in chunk],
            }
            results = self._call("composite/sobjects", "PATCH", json=body)
            for upd, res in zip(chunk, results, strict=True):
                if res.get("success"):
                    outcomes.append(UpdateOutcome(ref=upd.ref, ok=True))
                    continue
                err = (res.get("errors") or [{}])[0]
                code = err.get("statusCode")
                if code in _RETRYABLE_RECORD_CODES:
                    raise CRMRowLocked(f"{upd.ref.sobject} {upd.ref.record_id}: {err.get('message')}", code=code)
                outcomes.append(
                    UpdateOutcome(
                        ref=upd.ref, ok=False, code=code, message=err.get("message"), fields=tuple(err.get("fields") or ())
                    )
                )
        return outcomes

    def _client(self, *, fresh: bool = False) -> Salesforce:
        if self._sf is None or fresh:
            try:
                self._sf = self._connect()
            except SalesforceError as exc:
                raise CRMAuthError(f"cannot log in to Salesforce: {exc}") from exc
        return self._sf

    def _call(self, path: str, method: str, **kwargs: Any) -> Any:
        headers = {"Sforce-Call-Options": CALL_OPTIONS}
        for attempt in range(self._max_reauth + 1):
            sf = self._client(fresh=attempt > 0)
            self.api_calls += 1
            try:
                result = sf.restful(path, method=method, headers=headers, **kwargs)
            except SalesforceExpiredSession as exc:
                if attempt < self._max_reauth:
                    continue
                raise CRMAuthError(f"Salesforce session invalid after {attempt + 1} attempt(s): {_message(exc)}", code=_code(exc)) from exc
            except SalesforceRefusedRequest as exc:
                if _code(exc) == "REQUEST_LIMIT_EXCEEDED":
                    raise CRMLimitExceeded(f"Salesforce API limit reached: {_message(exc)}", code=_code(exc), retry_after=60.0) from exc
                raise CRMRejected(f"Salesforce refused {method} {path}: {_message(exc)}", code=_code(exc)) from exc
            except SalesforceResourceNotFound as exc:
                raise CRMNotFound(f"{path}: {_message(exc)}", code=_code(exc)) from exc
            except SalesforceError as exc:
                if exc.status >= 500:
                    raise CRMUnavailable(f"Salesforce answered {exc.status}: {_message(exc)}", code=_code(exc)) from exc
                if _code(exc) == "UNABLE_TO_LOCK_ROW":
                    raise CRMRowLocked(_message(exc), code=_code(exc)) from exc
                raise CRMRejected(f"Salesforce rejected {method} {path}: {_message(exc)}", code=_code(exc)) from exc
            except requests.RequestException as exc:
                raise CRMUnavailable(f"Salesforce unreachable: {exc}") from exc
            return result
        raise AssertionError("unreachable")


def _first_error(exc: SalesforceError) -> dict[str, Any]:
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return content[0]
    return {}


def _code(exc: SalesforceError) -> str | None:
    return _first_error(exc).get("errorCode")


def _message(exc: SalesforceError) -> str:
    return str(_first_error(exc).get("message") or exc.content)
