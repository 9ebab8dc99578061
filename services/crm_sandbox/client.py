"""Connecting the real simple-salesforce client to a running sandbox.

`sandbox_salesforce(base_url, ca_path, token)` is a `simple_salesforce.Salesforce`
with a session token; `sandbox_session(base_url, ca_path)` is the
`requests.Session` behind it, which trusts the sandbox CA and sends calls
meant for `https://<domain>.salesforce.com` (simple-salesforce's fixed login
URLs) to the sandbox, so the OAuth flows can be tested unchanged:

    Salesforce(username="integration@crmpilot.sandbox", password=..., consumer_key=...,
               consumer_secret=..., session=sandbox_session(url, ca))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce.api import Salesforce

__all__ = ["sandbox_salesforce", "sandbox_session"]


class _LoginRedirect(HTTPAdapter):
    """Sends requests for `*.salesforce.com` to the sandbox instead."""

    def __init__(self, sandbox_netloc: str) -> None:
        super().__init__()
        self._netloc = sandbox_netloc

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url or "")
        if parts.hostname and parts.hostname.endswith(".salesforce.com"):
            request.url = urlunsplit(parts._replace(netloc=self._netloc))
        return super().send(request, *args, **kwargs)


def sandbox_session(base_url: str, ca_path: str | Path) -> requests.Session:
    """A session that trusts the sandbox CA and routes Salesforce login URLs to the sandbox.

    It ignores the environment (REQUESTS_CA_BUNDLE would override `verify`, and
    proxies have no business with a loopback server).
    """
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ca_path)
    session.mount("https://", _LoginRedirect(urlsplit(base_url).netloc))
    return session


def sandbox_salesforce(base_url: str, ca_path: str | Path, token: str, *, version: str = "59.0") -> Salesforce:
    """simple-salesforce on the sandbox at `base_url` (e.g. https://127.0.0.1:8443), as `token`'s user."""
    return Salesforce(
        instance_url=base_url,
        session_id=token,
        session=sandbox_session(base_url, ca_path),
        version=version,
    )
