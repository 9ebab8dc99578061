"""The sandbox org's fixed identity: organization id and its users.

Three users exist in every sandbox: the integration user that crmpilot's
tokens act as, a human support agent (a second token, so tests can simulate a
person editing a record), and the site guest user that owns web-to-case and
web-to-lead records such as the demo seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .ids import make_id

__all__ = ["AGENT_USER", "GUEST_USER", "INTEGRATION_USER", "ORG_ID", "ORG_USERS", "OrgUser"]

ORG_ID = make_id("00D", 1, pod="SB")


@dataclass(frozen=True, slots=True)
class OrgUser:
    id: str
    username: str
    first_name: str
    last_name: str
    alias: str
    user_type: str

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def fields(self) -> dict[str, Any]:
        """The user's User record fields other than the system ones."""
        return {
            "Username": self.username,
            "FirstName": self.first_name,
            "LastName": self.last_name,
            "Name": self.name,
            "Email": self.username,
            "Alias": self.alias,
            "IsActive": True,
            "UserType": self.user_type,
        }


INTEGRATION_USER = OrgUser(
    make_id("005", 1, pod="SB"), "integration@crmpilot.sandbox", "crmpilot", "Integration", "crmint", "Standard"
)
AGENT_USER = OrgUser(make_id("005", 2, pod="SB"), "agent@crmpilot.sandbox", "Alex", "Agent", "aagent", "Standard")
GUEST_USER = OrgUser(make_id("005", 3, pod="SB"), "guest@crmpilot.sandbox", "Site", "Guest User", "guest", "Guest")
ORG_USERS: tuple[OrgUser, ...] = (INTEGRATION_USER, AGENT_USER, GUEST_USER)
