"""Salesforce adapter of the CRM ports, on simple-salesforce over Salesforce REST.

Reads and writes use sObject Collections (``composite/sobjects``): updates of
up to 200 records per API call, ``allOrNone=false`` so each record succeeds or
fails alone; reads of up to 2,000 ids per call (the POST form of the
collections retrieve; its GET form is bound by the URL length to about 800).
Change polls are SOQL queries paged through ``nextRecordsUrl``.
Salesforce's error codes are translated here into :mod:`crmpilot.crm.errors`.
simple-salesforce re-logs in by itself only for credential logins and without a
bound; this adapter instead rebuilds the client through its factory at most
``max_reauth`` times per call, then gives up with :class:`CRMAuthError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from .errors import CRMAuthError, CRMLimitExceeded, CRMNotFound, CRMRejected, CRMRowLocked, CRMUnavailable
from .port import ChangedRecord, RecordRef, RecordState, RecordUpdate, UpdateOutcome

__all__ = ["SalesforceCRM", "ApiUsage", "BATCH_LIMIT", "READ_LIMIT", "CALL_OPTIONS", "soql_datetime"]

BATCH_LIMIT = 200
"""Records per sObject Collections update."""
READ_LIMIT = 2000
"""Ids per sObject Collections retrieve in its POST form (ids and fields in the body; the GET form stops near 800)."""
CALL_OPTIONS = "client=crmpilot"
_RETRYABLE_RECORD_CODES = {"UNABLE_TO_LOCK_ROW"}
_STAMPS = ("Id", "CreatedDate", "LastModifiedDate", "LastModifiedById", "SystemModstamp")


def _parse_time(value: str) -> datetime:
    # Salesforce writes 2026-11-29T04:10:00.000+0000
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")


def soql_datetime(value: datetime) -> str:
    """A SOQL dateTime literal in UTC, to the second (rounded down)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class ApiUsage:
    """The org's API usage as the last ``Sforce-Limit-Info`` header reported it."""

    used: int
    limit: int


class SalesforceCRM:
    """The CRM port over Salesforce REST. ``connect`` builds a logged-in client."""

    def __init__(
        self,
        connect: Callable[[], Salesforce],
        *,
        user_id: str,
        max_reauth: int = 1,
        limit_retry_after_s: float = 60.0,
        read_limit: int = READ_LIMIT,
    ) -> None:
        """``limit_retry_after_s`` is the ``retry_after`` of :class:`CRMLimitExceeded` (Salesforce gives none)."""
        self._connect = connect
        self._sf: Salesforce | None = None
        self._user_id = user_id
        self._max_reauth = max_reauth
        self._limit_retry_after_s = limit_retry_after_s
        self._read_limit = read_limit
        self.api_calls = 0
        self.api_usage: ApiUsage | None = None

    @property
    def user_id(self) -> str:
        return self._user_id

    def fetch(self, sobject: str, ids: Sequence[str], fields: Sequence[str]) -> dict[str, RecordState]:
        wanted = list(dict.fromkeys(["Id", "LastModifiedDate", "LastModifiedById", *fields]))
        states: dict[str, RecordState] = {}
        for start in range(0, len(ids), self._read_limit):
            chunk = ids[start : start + self._read_limit]
            path = f"composite/sobjects/{sobject}"
            rows = self._call(path, "POST", json={"ids": list(chunk), "fields": wanted})
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
                        ref=upd.ref,
                        ok=False,
                        code=code,
                        message=err.get("message"),
                        fields=tuple(err.get("fields") or ()),
                    )
                )
        return outcomes

    def changed_since(
        self, sobject: str, fields: Sequence[str], since: datetime, *, page_size: int | None = None
    ) -> Iterator[list[ChangedRecord]]:
        wanted = list(dict.fromkeys([*_STAMPS, *fields]))
        soql = (
            f"SELECT {', '.join(wanted)} FROM {sobject} WHERE SystemModstamp >= {soql_datetime(since)}"
            " ORDER BY SystemModstamp, Id"
        )
        headers = {"Sforce-Query-Options": f"batchSize={page_size}"} if page_size else {}
        page = self._call("query", "GET", params={"q": soql}, headers=headers)
        while True:
            yield [_changed(sobject, row, fields) for row in page["records"]]
            if page["done"]:
                return
            # nextRecordsUrl is a full path (/services/data/vNN.0/query/<locator>); restful() wants it relative
            prefix = urlsplit(self._client().base_url).path
            page = self._call(page["nextRecordsUrl"].removeprefix(prefix), "GET", headers=headers)

    def org_limits(self) -> dict[str, Any]:
        """The org's limits (``/limits``); also refreshes :attr:`api_usage`."""
        return dict(self._call("limits", "GET"))

    @property
    def instance_url(self) -> str:
        return f"https://{self._client().sf_instance}"

    def _client(self, *, fresh: bool = False) -> Salesforce:
        if self._sf is None or fresh:
            try:
                self._sf = self._connect()
            except SalesforceError as exc:
                raise CRMAuthError(f"cannot log in to Salesforce: {exc}") from exc
        return self._sf

    def _call(self, path: str, method: str, *, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        headers = {"Sforce-Call-Options": CALL_OPTIONS, **(headers or {})}
        for attempt in range(self._max_reauth + 1):
            sf = self._client(fresh=attempt > 0)
            self.api_calls += 1
            try:
                result = sf.restful(path, method=method, headers=headers, **kwargs)
            except SalesforceExpiredSession as exc:
                if attempt < self._max_reauth:
                    continue
                raise CRMAuthError(
                    f"Salesforce session invalid after {attempt + 1} attempt(s): {_message(exc)}", code=_code(exc)
                ) from exc
            except SalesforceRefusedRequest as exc:
                if _code(exc) == "REQUEST_LIMIT_EXCEEDED":
                    raise CRMLimitExceeded(
                        f"Salesforce API limit reached: {_message(exc)}",
                        code=_code(exc),
                        retry_after=self._limit_retry_after_s,
                    ) from exc
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
            usage = sf.api_usage.get("api-usage")
            if usage is not None:
                self.api_usage = ApiUsage(usage.used, usage.total)
            return result
        raise AssertionError("unreachable")


def _changed(sobject: str, row: dict[str, Any], fields: Sequence[str]) -> ChangedRecord:
    return ChangedRecord(
        ref=RecordRef(sobject, row["Id"]),
        fields={f: row.get(f) for f in fields},
        created=_parse_time(row["CreatedDate"]),
        last_modified=_parse_time(row["LastModifiedDate"]),
        last_modified_by=row["LastModifiedById"],
        modstamp=_parse_time(row["SystemModstamp"]),
    )


def _first_error(exc: SalesforceError) -> dict[str, Any]:
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return content[0]
    return {}


def _code(exc: SalesforceError) -> str | None:
    return _first_error(exc).get("errorCode")


def _message(exc: SalesforceError) -> str:
    return str(_first_error(exc).get("message") or exc.content)
