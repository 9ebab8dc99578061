"""The shared ``__main__`` of consumer services: help, settings, logs, tracing, run.

``python -m <service> --help`` lists every setting with its environment
variable and default; invalid settings stop the service with a clear message
(exit 2) before anything connects.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable
from typing import Protocol, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from crmpilot.errors import CrmpilotError
from crmpilot.logs import setup_logging
from crmpilot.telemetry.setup import setup_tracing

__all__ = ["run_service", "settings_help"]

S = TypeVar("S", bound=BaseSettings)


class _Serving(Protocol):
    async def serve(self) -> int: ...


def settings_help(settings_cls: type[BaseSettings]) -> str:
    prefix = settings_cls.model_config.get("env_prefix", "")
    lines = []
    for name, field in settings_cls.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = "(secret)" if "secret" in str(field.annotation).lower() else repr(default)
        lines.append(f"  {(prefix + name).upper():<52} {field.description or ''} [default: {shown}]")
    return "\n".join(lines)


def run_service(name: str, settings_cls: type[S], bootstrap: Callable[[S], _Serving], doc: str | None) -> None:
    parser = argparse.ArgumentParser(
        prog=f"python -m {name}",
        description=doc,
        epilog="settings (environment variables):\n" + settings_help(settings_cls),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args()
    try:
        settings = settings_cls()
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
    raise SystemExit(asyncio.run(service.serve()))
