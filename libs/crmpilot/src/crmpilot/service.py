"""The shared ``__main__`` of consumer services: help, settings, logs, tracing, lifecycle endpoints, run.

``python -m <service> --help`` lists every setting with its environment
variable and default; invalid settings stop the service with a clear message
(exit 2) before anything connects.

Every service also reads ``<its prefix>HTTP_PORT`` and ``<its prefix>HTTP_HOST``
(e.g. ``CRMPILOT_TICKET_CLASSIFIER_HTTP_PORT``, :class:`EndpointSettings`): with
a port set, ``/healthz``, ``/readyz`` and ``/metrics``
(:class:`crmpilot.streaming.LifecycleServer`) are served while the service
runs; readiness comes from the service's ``status()`` when it has one (every
:class:`~crmpilot.streaming.ConsumerService` does), else it is "ready while
serving". Off by default (port 0): two instances of a service on one host
would otherwise fight over one port; deployments set one port per service.
A port that cannot be bound stops the service (exit 1).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
import sys
from collections.abc import Callable, Mapping
from typing import Protocol, TypeVar, cast

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from crmpilot.errors import CrmpilotError
from crmpilot.logs import setup_logging
from crmpilot.streaming.lifecycle import LifecycleServer, ServiceStatus
from crmpilot.telemetry.setup import setup_tracing

__all__ = ["EndpointSettings", "run_service", "settings_help"]

S = TypeVar("S", bound=BaseSettings)


class _Serving(Protocol):
    async def serve(self) -> int: ...


class EndpointSettings(BaseSettings):
    """Where a service serves ``/healthz``, ``/readyz`` and ``/metrics``; read with the service's own prefix."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    http_port: int = Field(default=0, ge=0, le=65535, description="port of /healthz, /readyz, /metrics (0: not served)")
    http_host: str = Field(default="127.0.0.1", description="address the endpoints bind")

    @classmethod
    def for_service(cls, settings_cls: type[BaseSettings]) -> EndpointSettings:
        return cls(_env_prefix=settings_cls.model_config.get("env_prefix", ""))  # type: ignore[call-arg]  # _env_prefix is a pydantic-settings init option, not a field


def settings_help(settings_cls: type[BaseSettings], *, prefix: str | None = None) -> str:
    """One line per setting: environment variable, description, default (secrets not shown)."""
    prefix = settings_cls.model_config.get("env_prefix", "") if prefix is None else prefix
    lines = []
    own = set(inspect.get_annotations(settings_cls))  # the class's own settings first, then those of its mixins
    for name, field in sorted(settings_cls.model_fields.items(), key=lambda item: item[0] not in own):
        default = field.get_default(call_default_factory=True)
        shown = "(secret)" if "secret" in str(field.annotation).lower() else repr(default)
        shown = "required" if field.is_required() else f"default: {shown}"
        lines.append(f"  {(prefix + name).upper():<52} {field.description or ''} [{shown}]")
    return "\n".join(lines)


def run_service(
    name: str,
    settings_cls: type[S],
    bootstrap: Callable[[S], _Serving],
    doc: str | None,
    *,
    options: Mapping[str, str] | None = None,
) -> None:
    """Parse ``--help`` (and ``options``: ``--flag`` -> the setting it sets), read the settings, run the service."""
    prefix = settings_cls.model_config.get("env_prefix", "")
    parser = argparse.ArgumentParser(
        prog=f"python -m {name}",
        description=doc,
        epilog="settings (environment variables):\n"
        + settings_help(settings_cls)
        + "\n"
        + settings_help(EndpointSettings, prefix=prefix),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for flag, setting in (options or {}).items():
        field = settings_cls.model_fields[setting]
        parser.add_argument(
            f"--{flag}",
            dest=setting,
            metavar=setting.upper(),
            help=f"{field.description} (or {(prefix + setting).upper()})",
        )
    args = vars(parser.parse_args())
    overrides = {k: v for k, v in args.items() if v is not None}
    try:
        settings = settings_cls(**overrides)
        endpoints = EndpointSettings.for_service(settings_cls)
    except ValidationError as exc:
        print(f"{name}: invalid settings:\n{exc}", file=sys.stderr)
        raise SystemExit(2) from None
    setup_logging(name, str(getattr(settings, "log_level", "INFO")))
    setup_tracing(name)
    log = logging.getLogger(name)
    try:
        service = bootstrap(settings)
    except CrmpilotError as exc:
        log.critical("cannot start: %s: %s", type(exc).__name__, exc)
        raise SystemExit(1) from None
    log.info("starting", extra={"fields": {"settings": settings.model_dump(mode="json")}})
    raise SystemExit(asyncio.run(_serve(service, endpoints, log)))


async def _serve(service: _Serving, endpoints: EndpointSettings, log: logging.Logger) -> int:
    """``service.serve()``, with the lifecycle endpoints alongside when a port is set."""
    if not endpoints.http_port:
        return await service.serve()
    server = LifecycleServer(_status_of(service), host=endpoints.http_host, port=endpoints.http_port)
    try:
        await server.start()
    except OSError as exc:
        log.critical(
            "cannot serve /healthz, /readyz, /metrics on %s:%d: %s", endpoints.http_host, endpoints.http_port, exc
        )
        return 1
    log.info("lifecycle endpoints on %s (/healthz, /readyz, /metrics)", server.url)
    try:
        return await service.serve()
    finally:
        await server.aclose()


def _status_of(service: _Serving) -> Callable[[], ServiceStatus]:
    status = getattr(service, "status", None)
    if callable(status):
        return cast(Callable[[], ServiceStatus], status)
    return lambda: ServiceStatus(alive=True, ready=True, reason="serving")
