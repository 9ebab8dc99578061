"""``python -m crm_writer``: write AI results back to CRM fields, never over a person's edit.

Reads the ``ai.*`` result topics; writes through Salesforce REST
(``CRMPILOT_SALESFORCE_*``; default: the local CRM sandbox) and records every
change in the warehouse audit (``CRMPILOT_DATABASE_URL``) so it can be reverted.
"""

from __future__ import annotations

from crmpilot.service import run_service

from .bootstrap import bootstrap
from .settings import Settings

if __name__ == "__main__":
    run_service("crm_writer", Settings, bootstrap, __doc__)
