"""What ``crmpilot crm status`` shows: which org, as whom, and how much of the daily API budget is spent.

Two API calls: ``/services/oauth2/userinfo`` (the integration user) and
``/limits`` (whose ``Sforce-Limit-Info`` header, like every answer's, carries
``api-usage=used/limit``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .connect import SalesforceSettings, connect, login_method, userinfo
from .salesforce import SalesforceCRM

__all__ = ["OrgStatus", "org_status"]


@dataclass(frozen=True, slots=True)
class OrgStatus:
    instance_url: str
    api_version: str
    login: str
    user_id: str
    username: str | None
    organization_id: str | None
    api_used: int | None
    api_limit: int | None

    @property
    def api_remaining(self) -> int | None:
        return None if self.api_used is None or self.api_limit is None else max(self.api_limit - self.api_used, 0)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "api_remaining": self.api_remaining}


def org_status(settings: SalesforceSettings | None = None) -> OrgStatus:
    """Log in with ``settings`` and describe the org; raises the CRM errors of :mod:`crmpilot.crm.errors`."""
    settings = settings or SalesforceSettings()
    sf = connect(settings)
    user = userinfo(sf, settings)
    crm = SalesforceCRM(lambda: sf, user_id=settings.integration_user_id or str(user["user_id"]))
    limits = crm.org_limits()
    usage = crm.api_usage
    daily = limits.get("DailyApiRequests") or {}
    used, limit = (usage.used, usage.limit) if usage else (None, None)
    if usage is None and "Max" in daily:
        limit, used = int(daily["Max"]), int(daily["Max"]) - int(daily.get("Remaining", 0))
    return OrgStatus(
        instance_url=crm.instance_url,
        api_version=settings.api_version,
        login=login_method(settings),
        user_id=crm.user_id,
        username=user.get("preferred_username"),
        organization_id=user.get("organization_id"),
        api_used=used,
        api_limit=limit,
    )
