"""``python -m crm_source``: CRM changes in, ``crm.*`` events out.

Polls Salesforce (``CRMPILOT_SALESFORCE_*``; default: the local CRM sandbox)
for changed Cases, EmailMessages and Leads by ``SystemModstamp``, from a
watermark kept in the warehouse (``CRMPILOT_DATABASE_URL``), and produces
``crm.case.created|updated`` to ``crm.case.events``, ``crm.email.received`` to
``crm.email.events`` and ``erp.request.submitted`` (kind lead) to
``crm.lead.events``, keyed by record id. crmpilot's own write-backs are not
emitted again; a person overriding an AI field is recorded as feedback.
"""

from __future__ import annotations

from crmpilot.service import run_service

from .bootstrap import bootstrap
from .settings import Settings

if __name__ == "__main__":
    run_service("crm_source", Settings, bootstrap, __doc__)
