"""The HTTP face of the sandbox: Salesforce REST paths on Starlette, plus admin endpoints.

`/services/data/v{version}/...` answers like Salesforce: bearer-token
sessions (401 INVALID_SESSION_ID), a daily API request limit (403
REQUEST_LIMIT_EXCEEDED) reported in `Sforce-Limit-Info` on every response,
errors as `[{"message", "errorCode", "fields"}]`, paths with or without a
trailing slash. `/services/oauth2/token` logs in. `/__sandbox/...` (outside
`/services`, no auth) resets, seeds, injects faults and lists changes.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .auth import OAuthError, Sessions
from .errors import (
    InvalidSessionId,
    JsonParserError,
    MalformedQuery,
    MethodNotAllowed,
    NotFound,
    RequestLimitExceeded,
    SalesforceError,
)
from .faults import FaultPlan, Faults
from .org import ORG_ID
from .schema import describe_global, describe_sobject
from .seed import seed_demo, seed_history
from .service import MAX_COLLECTION_RECORDS, Caller, Org
from .settings import SandboxSettings
from .store import Store

__all__ = ["create_app"]

Handler = Callable[[Request, Caller], Awaitable[Response]]

_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
_VERSION = re.compile(r"\d{2}\.0")
_MIN_BATCH, _MAX_BATCH = 200, 2000


def _client_option(header: str | None) -> str | None:
    """`client` from `Sforce-Call-Options: client=crmpilot, defaultNamespace=x`."""
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "client" and value.strip():
            return value.strip()
    return None


def _batch_size(header: str | None) -> int | None:
    """`batchSize` from `Sforce-Query-Options`, when within Salesforce's 200..2000."""
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key.strip() == "batchSize" and value.strip().isdigit():
            size = int(value)
            return size if _MIN_BATCH <= size <= _MAX_BATCH else None
    return None


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise JsonParserError("No content to map due to end-of-input")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise JsonParserError(f"Unexpected character in request body: {exc}") from exc


async def _record_body(request: Request) -> dict[str, Any]:
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise JsonParserError("Cannot deserialize instance of sObject from START_ARRAY value [")
    return body


def _csv(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


class _Api:
    """The Salesforce REST handlers and the pipeline every call goes through."""

    def __init__(self, org: Org, sessions: Sessions, faults: Faults, settings: SandboxSettings) -> None:
        self.org = org
        self.sessions = sessions
        self.faults = faults
        self.limit = settings.api_daily_limit

    def endpoint(self, handlers: Mapping[str, Handler]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await self.call(request, handlers)

        return endpoint

    async def call(self, request: Request, handlers: Mapping[str, Handler]) -> Response:
        used: int | None = None
        try:
            version = request.path_params["version"]
            if not _VERSION.fullmatch(version):
                raise NotFound()
            if self.faults.latency_ms:
                await asyncio.sleep(self.faults.latency_ms / 1000)
            user = self.sessions.user_for(request.headers.get("authorization"))
            if user is None:
                raise InvalidSessionId()
            handler = handlers.get(request.method)
            if handler is None:
                raise MethodNotAllowed(request.method, sorted(handlers))
            if self.faults.limit_exceeded:
                raise RequestLimitExceeded()
            used = await self.org.count_api_call(self.limit)
            if used is None:
                raise RequestLimitExceeded()
            caller = Caller(user.id, version, _client_option(request.headers.get("sforce-call-options")))
            response = await handler(request, caller)
        except SalesforceError as exc:
            response = JSONResponse([exc.as_api_error()], status_code=exc.status)
        if self.faults.limit_exceeded:
            used = self.limit
        elif used is None:
            used = await self.org.api_usage()
        response.headers["Sforce-Limit-Info"] = f"api-usage={used}/{self.limit}"
        return response

    # -- handlers ----------------------------------------------------------------------

    async def resources(self, request: Request, caller: Caller) -> Response:
        base = f"/services/data/v{caller.api_version}"
        names = ("sobjects", "query", "queryAll", "limits", "composite")
        return JSONResponse({name: f"{base}/{name}" for name in names})

    async def limits(self, request: Request, caller: Caller) -> Response:
        used = await self.org.api_usage()
        return JSONResponse(
            {
                "DailyApiRequests": {"Max": self.limit, "Remaining": max(self.limit - used, 0)},
                "DataStorageMB": {"Max": 1024, "Remaining": 1024},
            }
        )

    async def describe_global(self, request: Request, caller: Caller) -> Response:
        return JSONResponse(describe_global(self.org.schema, caller.api_version, MAX_COLLECTION_RECORDS))

    async def sobject_info(self, request: Request, caller: Caller) -> Response:
        described = describe_sobject(self.org.sobject(request.path_params["sobject"]), caller.api_version)
        summary = {k: v for k, v in described.items() if k not in ("fields", "childRelationships", "recordTypeInfos")}
        return JSONResponse({"objectDescribe": summary, "recentItems": []})

    async def describe(self, request: Request, caller: Caller) -> Response:
        spec = self.org.sobject(request.path_params["sobject"])
        return JSONResponse(describe_sobject(spec, caller.api_version))

    async def create(self, request: Request, caller: Caller) -> Response:
        sobject = request.path_params["sobject"]
        self.org.sobject(sobject)
        record_id = await self.org.create(caller, sobject, await _record_body(request))
        return JSONResponse({"id": record_id, "success": True, "errors": []}, status_code=201)

    async def retrieve(self, request: Request, caller: Caller) -> Response:
        record = await self.org.retrieve(
            request.path_params["sobject"],
            request.path_params["record_id"],
            _csv(request.query_params.get("fields")),
            caller.api_version,
        )
        return JSONResponse(record)

    async def update(self, request: Request, caller: Caller) -> Response:
        sobject, record_id = request.path_params["sobject"], request.path_params["record_id"]
        self.org.sobject(sobject)
        await self.org.update(caller, sobject, record_id, await _record_body(request))
        return Response(status_code=204)

    async def delete(self, request: Request, caller: Caller) -> Response:
        await self.org.delete(caller, request.path_params["sobject"], request.path_params["record_id"])
        return Response(status_code=204)

    async def query(self, request: Request, caller: Caller) -> Response:
        return await self._query(request, caller, include_deleted=False)

    async def query_all(self, request: Request, caller: Caller) -> Response:
        return await self._query(request, caller, include_deleted=True)

    async def _query(self, request: Request, caller: Caller, *, include_deleted: bool) -> Response:
        soql = request.query_params.get("q")
        if soql is None:
            raise MalformedQuery("A query string has to be specified")
        page = await self.org.query(
            soql,
            include_deleted=include_deleted,
            version=caller.api_version,
            batch_size=_batch_size(request.headers.get("sforce-query-options")),
        )
        return JSONResponse(page)

    async def query_more(self, request: Request, caller: Caller) -> Response:
        return await self._query_more(request, caller, include_deleted=False)

    async def query_all_more(self, request: Request, caller: Caller) -> Response:
        return await self._query_more(request, caller, include_deleted=True)

    async def _query_more(self, request: Request, caller: Caller, *, include_deleted: bool) -> Response:
        page = await self.org.query_more(
            request.path_params["locator"], version=caller.api_version, include_deleted=include_deleted
        )
        return JSONResponse(page)

    async def collection_create(self, request: Request, caller: Caller) -> Response:
        results = await self.org.save_collection(caller, await _json_body(request), creating=True)
        return JSONResponse(results)

    async def collection_update(self, request: Request, caller: Caller) -> Response:
        results = await self.org.save_collection(caller, await _json_body(request), creating=False)
        return JSONResponse(results)

    async def collection_retrieve(self, request: Request, caller: Caller) -> Response:
        ids = _csv(request.query_params.get("ids"))
        fields = _csv(request.query_params.get("fields"))
        if not ids or not fields:
            raise JsonParserError("Both ids and fields must be specified")
        rows = await self.org.retrieve_many(request.path_params["sobject"], ids, fields, caller.api_version)
        return JSONResponse(rows)

    async def collection_retrieve_post(self, request: Request, caller: Caller) -> Response:
        """The POST form of the same retrieve: ids and fields in the body, up to 2,000 ids."""
        body = await _json_body(request)
        ids = body.get("ids") if isinstance(body, dict) else None
        fields = body.get("fields") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not isinstance(fields, list) or not ids or not fields:
            raise JsonParserError("Both ids and fields must be specified")
        rows = await self.org.retrieve_many(
            request.path_params["sobject"], [str(i) for i in ids], [str(f) for f in fields], caller.api_version
        )
        return JSONResponse(rows)

    async def not_found(self, request: Request, caller: Caller) -> Response:
        raise NotFound()

    def routes(self) -> list[BaseRoute]:
        def both(path: str, handlers: Mapping[str, Handler]) -> list[BaseRoute]:
            full = f"/services/data/v{{version}}{path}"
            endpoint = self.endpoint(handlers)
            return [Route(full, endpoint, methods=_METHODS), Route(f"{full}/", endpoint, methods=_METHODS)]

        return [
            *both("", {"GET": self.resources}),
            *both("/limits", {"GET": self.limits}),
            *both("/sobjects", {"GET": self.describe_global}),
            *both("/sobjects/{sobject}", {"GET": self.sobject_info, "POST": self.create}),
            *both("/sobjects/{sobject}/describe", {"GET": self.describe}),
            *both(
                "/sobjects/{sobject}/{record_id}",
                {"GET": self.retrieve, "PATCH": self.update, "DELETE": self.delete},
            ),
            *both("/query", {"GET": self.query}),
            *both("/query/{locator}", {"GET": self.query_more}),
            *both("/queryAll", {"GET": self.query_all}),
            *both("/queryAll/{locator}", {"GET": self.query_all_more}),
            *both("/composite/sobjects", {"POST": self.collection_create, "PATCH": self.collection_update}),
            *both(
                "/composite/sobjects/{sobject}",
                {"GET": self.collection_retrieve, "POST": self.collection_retrieve_post},
            ),
            Route(
                "/services/data/v{version}/{rest:path}",
                self.endpoint(dict.fromkeys(_METHODS, self.not_found)),
                methods=_METHODS,
            ),
        ]


class _Admin:
    """Login and the `/__sandbox` endpoints."""

    def __init__(self, store: Store, org: Org, sessions: Sessions, faults: Faults) -> None:
        self.store = store
        self.org = org
        self.sessions = sessions
        self.faults = faults

    async def versions(self, request: Request) -> Response:
        return JSONResponse([{"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"}])

    async def token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        try:
            grant = self.sessions.login(form, request.headers.get("authorization"))
        except OAuthError as exc:
            return JSONResponse({"error": exc.error, "error_description": exc.description}, status_code=400)
        instance_url = f"{request.url.scheme}://{request.url.netloc}"
        return JSONResponse(grant.body(instance_url, int(time.time() * 1000)))

    async def userinfo(self, request: Request) -> Response:
        user = self.sessions.user_for(request.headers.get("authorization"))
        if user is None:
            return JSONResponse([InvalidSessionId().as_api_error()], status_code=401)
        return JSONResponse(
            {
                "sub": f"{request.url.scheme}://{request.url.netloc}/id/{ORG_ID}/{user.id}",
                "user_id": user.id,
                "organization_id": ORG_ID,
                "preferred_username": user.username,
                "name": user.name,
                "email": user.username,
            }
        )

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def faults_endpoint(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.faults.clear()
            self.sessions.expire(False)
        elif request.method == "POST":
            try:
                plan = FaultPlan.model_validate_json(await request.body() or b"{}")
            except ValidationError as exc:
                return JSONResponse(
                    {"error": "invalid fault plan", "detail": exc.errors(include_url=False)}, status_code=400
                )
            self.faults.apply(plan)
            if plan.expire_sessions is not None:
                self.sessions.expire(plan.expire_sessions)
        return JSONResponse(self.faults.as_dict())

    async def reset(self, request: Request) -> Response:
        await self.store.reset()
        await self.org.ensure_users()
        self.faults.clear()
        self.sessions.expire(False)
        return JSONResponse({"status": "reset"})

    async def seed(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse({"error": 'expected a JSON object like {"dataset": "demo"}'}, status_code=400)
        dataset = body.get("dataset", "demo")
        if dataset not in ("demo", "history"):
            return JSONResponse({"error": f"unknown dataset {dataset!r}; known: demo, history"}, status_code=400)
        created = await (seed_demo(self.org) if dataset == "demo" else seed_history(self.org))
        return JSONResponse({"dataset": dataset, "created": created})

    async def changes(self, request: Request) -> Response:
        try:
            after = int(request.query_params.get("after", "0"))
            limit = min(int(request.query_params.get("limit", "500")), 2000)
        except ValueError:
            return JSONResponse({"error": "after and limit must be integers"}, status_code=400)
        return JSONResponse(await self.org.change_events(after, limit))

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/services/data", self.versions, methods=["GET"]),
            Route("/services/data/", self.versions, methods=["GET"]),
            Route("/services/oauth2/token", self.token, methods=["POST"]),
            Route("/services/oauth2/userinfo", self.userinfo, methods=["GET"]),
            Route("/__sandbox/health", self.health, methods=["GET"]),
            Route("/__sandbox/faults", self.faults_endpoint, methods=["GET", "POST", "DELETE"]),
            Route("/__sandbox/reset", self.reset, methods=["POST"]),
            Route("/__sandbox/seed", self.seed, methods=["POST"]),
            Route("/__sandbox/changes", self.changes, methods=["GET"]),
        ]


def create_app(
    store: Store,
    settings: SandboxSettings,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Starlette:
    """The sandbox as an ASGI app over an open store; its startup creates the org's users."""
    faults = Faults()
    sessions = Sessions(
        integration_token=settings.session_token.get_secret_value(),
        human_token=settings.human_session_token.get_secret_value(),
        client_id=settings.client_id,
        client_secret=settings.client_secret.get_secret_value(),
        user_password=settings.user_password.get_secret_value(),
    )
    org = Org(store, clock=clock, lock_error=faults.take_lock_error, query_batch_size=settings.query_batch_size)
    api = _Api(org, sessions, faults, settings)
    admin = _Admin(store, org, sessions, faults)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await org.ensure_users()
        yield

    return Starlette(routes=[*admin.routes(), *api.routes()], lifespan=lifespan)
