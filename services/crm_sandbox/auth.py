"""Sessions: which user a bearer token acts as, and the OAuth 2.0 token endpoint's logic.

Two tokens are configured (integration user, human agent); logins through
`/services/oauth2/token` (password or client_credentials grant) issue more.
Issued tokens live in this process, so a restarted sandbox has expired them,
as a real org would after a session timeout.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from .org import AGENT_USER, INTEGRATION_USER, ORG_ID, ORG_USERS, OrgUser

__all__ = ["OAuthError", "Sessions", "TokenGrant"]


class OAuthError(Exception):
    """A failed login, answered as `{"error", "error_description"}` with HTTP 400."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


@dataclass(frozen=True, slots=True)
class TokenGrant:
    access_token: str
    user: OrgUser

    def body(self, instance_url: str, issued_at_ms: int) -> dict[str, str]:
        return {
            "access_token": self.access_token,
            "instance_url": instance_url,
            "id": f"{instance_url}/id/{ORG_ID}/{self.user.id}",
            "token_type": "Bearer",
            "issued_at": str(issued_at_ms),
            "signature": secrets.token_urlsafe(32),
        }


class Sessions:
    """Bearer tokens and the users they act as."""

    def __init__(
        self,
        *,
        integration_token: str,
        human_token: str,
        client_id: str,
        client_secret: str,
        user_password: str,
    ) -> None:
        self._configured = {integration_token: INTEGRATION_USER, human_token: AGENT_USER}
        self._issued: dict[str, OrgUser] = {}
        self._configured_expired = False
        self._client_id = client_id
        self._client_secret = client_secret
        self._password = user_password

    def user_for(self, authorization: str | None) -> OrgUser | None:
        """The user of an `Authorization: Bearer <token>` header, or None."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() not in ("bearer", "oauth") or not token:
            return None
        token = token.strip()
        if token in self._issued:
            return self._issued[token]
        return None if self._configured_expired else self._configured.get(token)

    def expire(self, expired: bool) -> None:
        """Expire every session (issued tokens are revoked for good), or let configured ones work again."""
        self._configured_expired = expired
        if expired:
            self._issued.clear()

    def login(self, form: Mapping[str, str], authorization: str | None) -> TokenGrant:
        """Check a token request (form fields, optional Basic client auth) and issue a token."""
        grant_type = form.get("grant_type", "")
        client_id, client_secret = self._client_credentials(form, authorization)
        if grant_type not in ("password", "client_credentials"):
            raise OAuthError("unsupported_grant_type", "grant type not supported")
        if client_id != self._client_id:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        if not secrets.compare_digest(client_secret.encode(), self._client_secret.encode()):
            raise OAuthError("invalid_client", "invalid client credentials")
        user = INTEGRATION_USER
        if grant_type == "password":
            found = next((u for u in ORG_USERS if u.username == form.get("username")), None)
            password = form.get("password", "").encode()
            if found is None or not secrets.compare_digest(password, self._password.encode()):
                raise OAuthError("invalid_grant", "authentication failure")
            user = found
        token = f"{ORG_ID[:15]}!{secrets.token_urlsafe(48)}"
        self._issued[token] = user
        return TokenGrant(token, user)

    @staticmethod
    def _client_credentials(form: Mapping[str, str], authorization: str | None) -> tuple[str, str]:
        scheme, _, encoded = (authorization or "").partition(" ")
        if scheme.lower() == "basic" and encoded:
            try:
                client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise OAuthError("invalid_client", "invalid client credentials") from exc
            return client_id, secret
        return form.get("client_id", ""), form.get("client_secret", "")
