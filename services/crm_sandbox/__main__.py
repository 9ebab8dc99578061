"""`python -m crm_sandbox`: run the Salesforce-compatible sandbox over HTTPS.

Settings come from `CRMPILOT_SANDBOX_*` variables (see settings.py); the
flags override a few. The objects and fields the enrichment specs of
`CRMPILOT_ENRICHMENTS_DIR` write are added to the org's schema (a bad spec, or one
targeting an object the sandbox does not serve, stops the start with its file and
line). Prints the URL, the CA to trust and the session tokens, then serves until
Ctrl-C or SIGTERM, finishing requests in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from types import FrameType
from typing import NoReturn

from crmpilot.enrichments.spec import SpecError

from .org import AGENT_USER, INTEGRATION_USER
from .schema import org_schema
from .server import SandboxServer
from .settings import SandboxSettings
from .store import StoreUnavailable


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m crm_sandbox",
        description="Salesforce REST API-compatible sandbox for crmpilot's dev, demo and tests, "
        "backed by PostgreSQL (settings: CRMPILOT_SANDBOX_* environment variables).",
        epilog="CRMPILOT_ENRICHMENTS_DIR (folders of enrichment spec files, ':'-separated) adds the "
        "objects' fields those specs write: missing custom fields, and their enum values on mapped picklists.",
    )
    parser.add_argument("--seed", choices=["demo"], help="create the demo records (cases, leads, ...) if missing")
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        metavar="N",
        help="also create N closed cases with their final category (AI_Category__c), the history "
        "`crmpilot train --soql` learns from (make demo: 480)",
    )
    parser.add_argument("--host", help="address to listen on (CRMPILOT_SANDBOX_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (CRMPILOT_SANDBOX_PORT, default 8443)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser.parse_args(argv)


def _banner(server: SandboxServer) -> None:
    settings = server.settings
    print(
        f"crm_sandbox listening on {server.url}\n"
        f"  CA certificate : {server.ca_path}\n"
        f"  session token  : {settings.session_token.get_secret_value()}  "
        f"(integration user {INTEGRATION_USER.id})\n"
        f"  human token    : {settings.human_session_token.get_secret_value()}  "
        f"(agent user {AGENT_USER.id})\n"
        f"  admin          : {server.url}/__sandbox/{{health,faults,reset,seed,changes}}",
        flush=True,
    )


def _interrupt(signum: int, frame: FrameType | None) -> NoReturn:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        # the org reads the specs again when it starts; refuse bad ones before touching TLS files or the database
        org_schema()
    except SpecError as exc:
        print(
            f"crm_sandbox: the enrichment specs of CRMPILOT_ENRICHMENTS_DIR cannot be served:\n{exc}", file=sys.stderr
        )
        return 2
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = SandboxSettings(**overrides)
    if args.history < 0:
        print("crm_sandbox: --history must be 0 or more", file=sys.stderr)
        return 2
    server = SandboxServer(settings, seed=args.seed, history=args.history, log_level=args.log_level, on_ready=_banner)
    # uvicorn shuts down gracefully on these, then re-raises them; ours end the run cleanly.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        asyncio.run(server.serve())
    except KeyboardInterrupt:
        print("crm_sandbox stopped", flush=True)
    except StoreUnavailable as exc:
        print(f"crm_sandbox: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
