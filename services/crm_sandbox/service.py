"""The org's operations, independent of HTTP: read, write, query, collections.

Every write runs in one store transaction, checks fields like the org does,
maintains the system fields (CreatedDate/ById, LastModifiedDate/ById,
SystemModstamp) for the calling user, keeps derived fields (Name, CaseNumber,
IsClosed, IsWon) and logs a change carrying the caller's `changeOrigin`. Errors are
raised as `errors.SalesforceError` subclasses; sObject collections turn them
into per-record results instead.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from .cdc import change_event
from .errors import (
    AllOrNoneRolledBack,
    EntityIsDeleted,
    ExceededIdLimit,
    InvalidCrossReferenceKey,
    InvalidField,
    InvalidFieldForInsertUpdate,
    InvalidQueryLocator,
    InvalidType,
    JsonParserError,
    MalformedId,
    MalformedQuery,
    MissingArgument,
    NotFound,
    SalesforceError,
    UnableToLockRow,
)
from .ids import make_id, normalize_id
from .org import ORG_USERS, OrgUser
from .query import bind, execute, id_filter, project, resolve_field
from .schema import CLOSED_STAGES, EMAIL_DRAFT_STATUS, FieldSpec, Schema, SObjectSpec, org_schema
from .sftime import format_datetime
from .soql import parse_soql
from .store import Change, ChangeType, Cursor, Store, StoredRecord, StoreTransaction
from .validation import check_write

__all__ = ["MAX_COLLECTION_RECORDS", "Caller", "Org"]

MAX_COLLECTION_RECORDS = 200
MAX_RETRIEVE_IDS = 2000
CURSOR_TTL = timedelta(minutes=15)
_SYSTEM_USER_FIELDS = ("CreatedById", "LastModifiedById")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who makes a call: the session's user, the API version, the `Sforce-Call-Options` client."""

    user_id: str
    api_version: str = "59.0"
    client: str | None = None

    @property
    def change_origin(self) -> str:
        origin = f"com/salesforce/api/rest/{self.api_version}"
        return f"{origin};client={self.client}" if self.client else origin


@dataclass
class _Commit:
    tx: StoreTransaction
    caller: Caller
    moment: datetime
    key: str = field(default_factory=lambda: uuid4().hex)
    sequence: int = 0

    @property
    def timestamp(self) -> str:
        return format_datetime(self.moment)

    async def log(
        self,
        record: StoredRecord,
        change_type: ChangeType,
        changed: tuple[str, ...],
        values: Mapping[str, Any],
    ) -> None:
        self.sequence += 1
        await self.tx.log(
            Change(
                record.sobject,
                record.id,
                change_type,
                self.caller.change_origin,
                self.caller.user_id,
                self.moment,
                self.key,
                self.sequence,
                changed,
                values,
            )
        )


class _RolledBack(Exception):
    """Ends an allOrNone collection's transaction without committing it."""


@dataclass(frozen=True, slots=True)
class _Outcome:
    record_id: str | None
    error: SalesforceError | None = None

    def render(self) -> dict[str, Any]:
        result: dict[str, Any] = {} if self.record_id is None else {"id": self.record_id}
        result["success"] = self.error is None
        result["errors"] = [] if self.error is None else [self.error.as_record_error()]
        return result


def _never() -> bool:
    return False


class Org:
    """The sandbox org over a store.

    Its schema defaults to :func:`schema.org_schema`: the standard objects plus the
    fields the enrichment specs of ``CRMPILOT_ENRICHMENTS_DIR`` write (read once, here).
    """

    def __init__(
        self,
        store: Store,
        *,
        schema: Schema | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        lock_error: Callable[[], bool] = _never,
        query_batch_size: int = 2000,
    ) -> None:
        self._store = store
        self.schema = schema or org_schema()
        self._clock = clock
        self._lock_error = lock_error
        self._batch_size = query_batch_size

    # -- lookups ---------------------------------------------------------------------

    def sobject(self, name: str) -> SObjectSpec:
        """The sObject type named in a URL; 404 NOT_FOUND if there is none."""
        spec = self.schema.get(name)
        if spec is None:
            raise NotFound()
        return spec

    @staticmethod
    def _url_id(spec: SObjectSpec, raw: str) -> str:
        record_id = normalize_id(raw)
        if record_id is None:
            raise NotFound(f"Provided external ID field does not exist or is not accessible: {raw}")
        if record_id[:3] != spec.key_prefix:
            raise NotFound()
        return record_id

    def _fields(self, spec: SObjectSpec, names: Sequence[str] | None) -> list[FieldSpec]:
        if names is None:
            return list(spec.fields)
        return [resolve_field(spec, n) for n in names]

    # -- reads -----------------------------------------------------------------------

    async def retrieve(
        self, sobject: str, record_id: str, fields: Sequence[str] | None, version: str
    ) -> dict[str, Any]:
        spec = self.sobject(sobject)
        rid = self._url_id(spec, record_id)
        chosen = self._fields(spec, fields)
        record = (await self._store.fetch([rid])).get(rid)
        if record is None or record.sobject != spec.name:
            raise NotFound()
        if record.is_deleted:
            raise EntityIsDeleted()
        return project(spec, chosen, record.fields, version)

    async def retrieve_many(
        self, sobject: str, ids: Sequence[str], fields: Sequence[str], version: str
    ) -> list[dict[str, Any] | None]:
        spec = self.sobject(sobject)
        if len(ids) > MAX_RETRIEVE_IDS:
            raise ExceededIdLimit(MAX_RETRIEVE_IDS)
        chosen = self._fields(spec, fields)
        normalized = []
        for raw in ids:
            rid = normalize_id(raw)
            if rid is None:
                raise MalformedId(f"malformed id {raw}")
            normalized.append(rid)
        found = await self._store.fetch(normalized)
        rows: list[dict[str, Any] | None] = []
        for rid in normalized:
            record = found.get(rid)
            ok = record is not None and record.sobject == spec.name and not record.is_deleted
            rows.append(project(spec, chosen, record.fields, version) if ok and record else None)
        return rows

    async def query(
        self, soql: str, *, include_deleted: bool, version: str, batch_size: int | None = None
    ) -> dict[str, Any]:
        if not soql.strip():
            raise MalformedQuery("A query string has to be specified")
        bound = bind(self.schema, parse_soql(soql))
        pinned = id_filter(bound)
        if pinned is None:
            records = await self._store.scan(bound.sobject.name, include_deleted=include_deleted)
        else:
            found = await self._store.fetch(sorted(pinned))
            records = [
                r
                for _, r in sorted(found.items())
                if r.sobject == bound.sobject.name and (include_deleted or not r.is_deleted)
            ]
        matched = execute(bound, [r.fields for r in records])
        if bound.is_count:
            return {"totalSize": len(matched), "done": True, "records": []}
        rows = [project(bound.sobject, bound.fields, r, version) for r in matched]
        batch = batch_size or self._batch_size
        endpoint = "queryAll" if include_deleted else "query"
        if len(rows) <= batch:
            return {"totalSize": len(rows), "done": True, "records": rows}
        locator = f"01g{secrets.token_hex(8)}"
        await self._store.save_cursor(locator, Cursor(batch, rows), self._clock(), CURSOR_TTL)
        return self._page(Cursor(batch, rows), locator, 0, version, endpoint)

    async def query_more(self, locator_and_offset: str, *, version: str, include_deleted: bool) -> dict[str, Any]:
        locator, _, offset_text = locator_and_offset.rpartition("-")
        cursor = await self._store.load_cursor(locator) if offset_text.isdigit() else None
        if cursor is None or int(offset_text) >= len(cursor.rows):
            raise InvalidQueryLocator()
        endpoint = "queryAll" if include_deleted else "query"
        return self._page(cursor, locator, int(offset_text), version, endpoint)

    @staticmethod
    def _page(cursor: Cursor, locator: str, offset: int, version: str, endpoint: str) -> dict[str, Any]:
        end = offset + cursor.batch_size
        page: dict[str, Any] = {"totalSize": len(cursor.rows), "done": end >= len(cursor.rows)}
        if end < len(cursor.rows):
            page["nextRecordsUrl"] = f"/services/data/v{version}/{endpoint}/{locator}-{end}"
        page["records"] = cursor.rows[offset:end]
        return page

    async def change_events(self, after: int, limit: int) -> list[dict[str, Any]]:
        return [change_event(c) for c in await self._store.changes(after, limit)]

    # -- API usage -------------------------------------------------------------------

    async def count_api_call(self, daily_limit: int) -> int | None:
        """Count a request against today's limit; None when the limit is exhausted."""
        return await self._store.count_api_call(self._clock().date(), daily_limit)

    async def api_usage(self) -> int:
        return await self._store.api_usage(self._clock().date())

    # -- writes ----------------------------------------------------------------------

    @asynccontextmanager
    async def _commit(self, caller: Caller) -> AsyncIterator[_Commit]:
        async with self._store.transaction() as tx:
            yield _Commit(tx, caller, self._clock())

    async def create(self, caller: Caller, sobject: str, body: Mapping[str, Any]) -> str:
        spec = self.sobject(sobject)
        async with self._commit(caller) as commit:
            record = await self._create(commit, spec, body)
        return record.id

    async def update(self, caller: Caller, sobject: str, record_id: str, body: Mapping[str, Any]) -> None:
        spec = self.sobject(sobject)
        rid = self._url_id(spec, record_id)
        async with self._commit(caller) as commit:
            await self._update(commit, spec, rid, body)

    async def delete(self, caller: Caller, sobject: str, record_id: str) -> None:
        spec = self.sobject(sobject)
        rid = self._url_id(spec, record_id)
        async with self._commit(caller) as commit:
            existing = await self._existing(commit, spec, rid)
            fields = {
                **existing.fields,
                "IsDeleted": True,
                "LastModifiedDate": commit.timestamp,
                "LastModifiedById": caller.user_id,
                "SystemModstamp": commit.timestamp,
            }
            record = StoredRecord(spec.name, fields)
            await commit.tx.put(record)
            await commit.log(record, "DELETE", (), {})

    async def save_collection(self, caller: Caller, body: Any, *, creating: bool) -> list[dict[str, Any]]:
        """`POST` (create) or `PATCH` (update) `composite/sobjects`: per-record results, in order."""
        all_or_none, records = _collection_body(body)
        outcomes: list[_Outcome] = []
        try:
            async with self._commit(caller) as commit:
                for raw in records:
                    outcomes.append(await self._save_one(commit, raw, creating=creating))
                if all_or_none and any(o.error for o in outcomes):
                    raise _RolledBack()
        except _RolledBack:
            outcomes = [
                o if o.error else _Outcome(None if creating else o.record_id, AllOrNoneRolledBack()) for o in outcomes
            ]
        return [o.render() for o in outcomes]

    async def _save_one(self, commit: _Commit, raw: Any, *, creating: bool) -> _Outcome:
        if not isinstance(raw, dict):
            return _Outcome(None, JsonParserError("Each record must be a JSON object"))
        fields = {k: v for k, v in raw.items() if k.lower() != "id"}
        raw_id = next((v for k, v in raw.items() if k.lower() == "id"), None)
        try:
            spec = self._collection_type(raw)
            if creating:
                if raw_id is not None:
                    raise InvalidField("cannot specify Id in an insert call", ["Id"])
                return _Outcome((await self._create(commit, spec, fields)).id)
            if raw_id is None:
                raise MissingArgument("Id not specified in an update call")
            rid = normalize_id(raw_id) if isinstance(raw_id, str) else None
            if rid is None or rid[:3] != spec.key_prefix:
                raise MalformedId(f"malformed id {raw_id}")
        except SalesforceError as exc:
            return _Outcome(None, exc)
        try:
            await self._update(commit, spec, rid, fields)
        except SalesforceError as exc:
            return _Outcome(rid, exc)
        return _Outcome(rid)

    def _collection_type(self, raw: Mapping[str, Any]) -> SObjectSpec:
        attributes = raw.get("attributes")
        name = attributes.get("type") if isinstance(attributes, dict) else None
        if not isinstance(name, str):
            raise InvalidType("Must specify a type in the attributes for each record")
        spec = self.schema.get(name)
        if spec is None:
            raise InvalidType(f"sObject type '{name}' is not supported.")
        return spec

    async def _existing(self, commit: _Commit, spec: SObjectSpec, rid: str) -> StoredRecord:
        existing = await commit.tx.get(rid)
        if existing is None or existing.sobject != spec.name:
            raise NotFound()
        if existing.is_deleted:
            raise EntityIsDeleted()
        if self._lock_error():
            raise UnableToLockRow(rid)
        return existing

    async def _create(
        self, commit: _Commit, spec: SObjectSpec, body: Mapping[str, Any], record_id: str | None = None
    ) -> StoredRecord:
        values = check_write(self.schema, spec, body, creating=True)
        await self._check_references(commit.tx, spec, values)
        rid = record_id or make_id(spec.key_prefix, await commit.tx.next_record_number())
        if self._lock_error():
            raise UnableToLockRow(rid)
        fields = _defaults(spec, commit.caller.user_id)
        fields.update({k: v for k, v in values.items() if v is not None})
        fields.update(
            Id=rid,
            IsDeleted=False,
            CreatedDate=commit.timestamp,
            CreatedById=commit.caller.user_id,
            LastModifiedDate=commit.timestamp,
            LastModifiedById=commit.caller.user_id,
            SystemModstamp=commit.timestamp,
        )
        if spec.field("CaseNumber"):
            fields["CaseNumber"] = f"{1000 + await commit.tx.next_auto_number('Case.CaseNumber'):08d}"
        _derive(spec, None, fields, commit.timestamp)
        record = StoredRecord(spec.name, fields)
        await commit.tx.put(record)
        await commit.log(record, "CREATE", (), fields)
        return record

    async def _update(self, commit: _Commit, spec: SObjectSpec, rid: str, body: Mapping[str, Any]) -> None:
        existing = await self._existing(commit, spec, rid)
        values = check_write(self.schema, spec, body, creating=False)
        _check_email_draft(spec, existing, values)
        await self._check_references(commit.tx, spec, values)
        fields = dict(existing.fields)
        for name, value in values.items():
            if value is None:
                fields.pop(name, None)
            else:
                fields[name] = value
        fields.update(
            LastModifiedDate=commit.timestamp,
            LastModifiedById=commit.caller.user_id,
            SystemModstamp=commit.timestamp,
        )
        _derive(spec, existing.fields, fields, commit.timestamp)
        changed = tuple(f.name for f in spec.fields if existing.fields.get(f.name) != fields.get(f.name))
        record = StoredRecord(spec.name, fields)
        await commit.tx.put(record)
        await commit.log(record, "UPDATE", changed, {name: fields.get(name) for name in changed})

    async def _check_references(self, tx: StoreTransaction, spec: SObjectSpec, values: Mapping[str, Any]) -> None:
        for name, value in values.items():
            field_spec = spec.field(name)
            if value is None or field_spec is None or field_spec.type != "reference":
                continue
            target = await tx.get(value)
            if target is None or target.is_deleted:
                raise InvalidCrossReferenceKey("invalid cross reference id", [field_spec.name])

    # -- bootstrap -------------------------------------------------------------------

    async def ensure_users(self) -> None:
        """Create the org's fixed users if they are missing (no change is logged)."""
        user_spec = self.sobject("User")
        async with self._commit(Caller(ORG_USERS[0].id)) as commit:
            for user in ORG_USERS:
                if await commit.tx.get(user.id) is None:
                    await commit.tx.put(StoredRecord(user_spec.name, _user_fields(user, commit.timestamp)))

    async def import_records(self, caller: Caller, records: Sequence[tuple[str, str, Mapping[str, Any]]]) -> int:
        """Create (type, fixed id, fields) records that do not exist yet; how many were created."""
        created = 0
        async with self._commit(caller) as commit:
            for sobject, record_id, body in records:
                if await commit.tx.get(record_id) is None:
                    await self._create(commit, self.sobject(sobject), body, record_id)
                    created += 1
        return created


def _user_fields(user: OrgUser, timestamp: str) -> dict[str, Any]:
    return {
        "Id": user.id,
        "IsDeleted": False,
        "CreatedDate": timestamp,
        "LastModifiedDate": timestamp,
        "SystemModstamp": timestamp,
        **{name: ORG_USERS[0].id for name in _SYSTEM_USER_FIELDS},
        **user.fields(),
    }


def _collection_body(body: Any) -> tuple[bool, list[Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise JsonParserError("The request body must be an object with a records array")
    all_or_none = body.get("allOrNone", False)
    if not isinstance(all_or_none, bool):
        raise JsonParserError(f"Cannot deserialize instance of boolean from value {all_or_none}")
    if len(body["records"]) > MAX_COLLECTION_RECORDS:
        raise ExceededIdLimit(MAX_COLLECTION_RECORDS)
    return all_or_none, body["records"]


def _defaults(spec: SObjectSpec, owner_id: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for f in spec.fields:
        if f.default is not None:
            fields[f.name] = f.default
        elif f.type == "boolean":
            fields[f.name] = False
    if spec.field("OwnerId"):
        fields["OwnerId"] = owner_id
    return fields


def _derive(spec: SObjectSpec, before: Mapping[str, Any] | None, fields: dict[str, Any], timestamp: str) -> None:
    name_field = spec.field("Name")
    if name_field is not None and name_field.calculated:
        fields["Name"] = " ".join(p for p in (fields.get("FirstName"), fields.get("LastName")) if p)
    if spec.name == "Case":
        closed = fields.get("Status") == "Closed"
        fields["IsClosed"] = closed
        if not closed:
            fields.pop("ClosedDate", None)
        elif not (before and before.get("IsClosed")):
            fields["ClosedDate"] = timestamp
    if spec.name == "Opportunity":
        won = CLOSED_STAGES.get(fields.get("StageName") or "")
        fields["IsClosed"] = won is not None
        fields["IsWon"] = bool(won)


def _check_email_draft(spec: SObjectSpec, existing: StoredRecord, values: Mapping[str, Any]) -> None:
    """Only drafts are updatable, except their custom fields and Status."""
    if spec.name != "EmailMessage" or existing.fields.get("Status") == EMAIL_DRAFT_STATUS:
        return
    locked = [n for n in values if n != "Status" and not _is_custom(spec, n)]
    if locked:
        raise InvalidFieldForInsertUpdate(locked)


def _is_custom(spec: SObjectSpec, name: str) -> bool:
    field_spec = spec.field(name)
    return field_spec is not None and field_spec.custom
