"""Salesforce connection settings (``CRMPILOT_SALESFORCE_*``) and the client factory.

Five ways to log in, as simple-salesforce supports them, picked by which
settings are present:

1. ``USERNAME`` + ``PASSWORD`` + ``CLIENT_ID`` + ``CLIENT_SECRET``: OAuth 2.0 username-password flow;
2. ``USERNAME`` + ``CLIENT_ID`` + ``PRIVATE_KEY_FILE``: OAuth 2.0 JWT bearer flow;
3. ``USERNAME`` + ``PASSWORD`` (+ ``SECURITY_TOKEN``): SOAP login;
4. ``CLIENT_ID`` + ``CLIENT_SECRET`` (+ ``DOMAIN``): OAuth 2.0 client credentials;
5. ``SESSION_ID`` + ``INSTANCE_URL``: an existing session (default: the CRM sandbox's token).

``CA_BUNDLE`` makes the HTTPS session trust a private CA (the sandbox's).
The integration user's id (who our writes are attributed to) is read from
``/services/oauth2/userinfo`` unless ``INTEGRATION_USER_ID`` is set.
:func:`salesforce_crm` puts it together: the CRM port, logged in, knowing its user.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from requests.adapters import HTTPAdapter
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed

from .errors import CRMAuthError, CRMUnavailable
from .salesforce import SalesforceCRM

__all__ = ["SalesforceSettings", "connect", "integration_user_id", "login_method", "salesforce_crm", "userinfo"]


class SalesforceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRMPILOT_SALESFORCE_", frozen=True, extra="ignore")

    instance_url: str | None = Field(
        default="https://127.0.0.1:8443", description="https://<instance> of the org (default: the local CRM sandbox)"
    )
    session_id: SecretStr | None = Field(
        default=SecretStr("sandbox-integration-token"), description="an existing session / access token"
    )
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    client_id: str | None = Field(
        default=None, description="OAuth connected app consumer key (client credentials flow)"
    )
    client_secret: SecretStr | None = None
    domain: str | None = Field(default=None, description="login domain: login, test, or a My Domain host")
    private_key_file: Path | None = Field(default=None, description="JWT bearer flow: the connected app's private key")
    ca_bundle: Path | None = Field(default=None, description="CA file to trust for HTTPS (the sandbox's ca.pem)")
    api_version: str = "59.0"
    integration_user_id: str | None = Field(
        default=None, description="User id our writes are attributed to (default: from userinfo)"
    )
    timeout_s: float = Field(default=30.0, gt=0)


class _TrustCA(HTTPAdapter):
    """Verify HTTPS against one CA file, whatever REQUESTS_CA_BUNDLE says.

    (requests lets that variable override ``Session.verify``; an adapter sees the final value.)
    """

    def __init__(self, ca_file: str) -> None:
        super().__init__()
        self._ca_file = ca_file

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]  # HTTPAdapter.send names its parameters; all but the request are passed on as they came
        kwargs["verify"] = self._ca_file
        return super().send(request, **kwargs)


def _session(settings: SalesforceSettings) -> requests.Session:
    session = requests.Session()
    if settings.ca_bundle is not None:
        session.mount("https://", _TrustCA(str(settings.ca_bundle)))
    return session


def connect(settings: SalesforceSettings, *, session: requests.Session | None = None) -> Salesforce:
    """A logged-in simple-salesforce client; raises :class:`CRMAuthError` when no login method is configured.

    ``session`` replaces the HTTP session built from the settings (a proxy, a test transport).
    """
    common: dict[str, Any] = {"session": session or _session(settings), "version": settings.api_version}

    def secret(value: SecretStr | None) -> str | None:
        return value.get_secret_value() if value is not None else None

    s = settings
    try:
        if s.username and s.password and s.client_id and s.client_secret:
            # OAuth 2.0 username-password flow: the security token is appended to the password.
            return Salesforce(
                username=s.username,
                password=s.password.get_secret_value() + (secret(s.security_token) or ""),
                consumer_key=s.client_id,
                consumer_secret=secret(s.client_secret),
                domain=s.domain,
                **common,
            )
        if s.username and s.client_id and s.private_key_file:
            return Salesforce(
                username=s.username,
                consumer_key=s.client_id,
                privatekey_file=str(s.private_key_file),
                domain=s.domain,
                **common,
            )
        if s.username and s.password:
            # SOAP login (username, password and the user's security token)
            return Salesforce(
                username=s.username,
                password=secret(s.password),
                security_token=secret(s.security_token) or "",
                domain=s.domain,
                **common,
            )
        if s.client_id and s.client_secret:
            return Salesforce(
                consumer_key=s.client_id, consumer_secret=secret(s.client_secret), domain=s.domain or "login", **common
            )
        if s.session_id and s.instance_url:
            return Salesforce(instance_url=s.instance_url, session_id=secret(s.session_id), **common)
    except requests.RequestException as exc:
        raise CRMUnavailable(f"cannot reach Salesforce to log in: {exc}") from exc
    except SalesforceAuthenticationFailed as exc:
        raise CRMAuthError(f"Salesforce login failed: {exc}") from exc
    raise CRMAuthError(
        "no Salesforce login configured: set CRMPILOT_SALESFORCE_SESSION_ID + INSTANCE_URL, USERNAME + PASSWORD "
        "(+ SECURITY_TOKEN, or + CLIENT_ID + CLIENT_SECRET), USERNAME + CLIENT_ID + PRIVATE_KEY_FILE (JWT), or "
        "CLIENT_ID + CLIENT_SECRET"
    )


def login_method(settings: SalesforceSettings) -> str:
    """Which of the five logins :func:`connect` uses for these settings (``none`` if none applies)."""
    s = settings
    if s.username and s.password and s.client_id and s.client_secret:
        return "oauth-password"
    if s.username and s.client_id and s.private_key_file:
        return "oauth-jwt"
    if s.username and s.password:
        return "soap-password"
    if s.client_id and s.client_secret:
        return "oauth-client-credentials"
    if s.session_id and s.instance_url:
        return "session"
    return "none"


def integration_user_id(sf: Salesforce, settings: SalesforceSettings) -> str:
    if settings.integration_user_id:
        return settings.integration_user_id
    return str(userinfo(sf, settings)["user_id"])


def userinfo(sf: Salesforce, settings: SalesforceSettings) -> dict[str, Any]:
    """The logged-in user as ``/services/oauth2/userinfo`` describes it (user_id, preferred_username,
    organization_id…)."""
    url = f"{sf.base_url.split('/services/')[0]}/services/oauth2/userinfo"
    try:
        resp = sf.session.get(url, headers=sf.headers, timeout=settings.timeout_s)
    except requests.RequestException as exc:
        raise CRMUnavailable(f"cannot reach Salesforce at {url}: {exc}") from exc
    if resp.status_code == 401:
        raise CRMAuthError("Salesforce rejected the session (401 on userinfo): check CRMPILOT_SALESFORCE_* credentials")
    if resp.status_code != 200:
        raise CRMUnavailable(f"userinfo answered {resp.status_code}; set CRMPILOT_SALESFORCE_INTEGRATION_USER_ID")
    return dict(resp.json())


def salesforce_crm(settings: SalesforceSettings | None = None, *, limit_retry_after_s: float = 60.0) -> SalesforceCRM:
    """The CRM port on Salesforce: logs in once now (failing fast), again whenever the session expires."""
    settings = settings or SalesforceSettings()
    first = connect(settings)
    user = integration_user_id(first, settings)
    return SalesforceCRM(lambda: connect(settings), user_id=user, limit_retry_after_s=limit_retry_after_s)
