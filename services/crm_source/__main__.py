"""``python -m crm_source``: CRM changes in, ``crm.*`` events out.

Polls Salesforce (``CRMPILOT_SALESFORCE_*``; default: the local CRM sandbox)
for changed Cases, EmailMessages and Leads by ``SystemModstamp``, from a
watermark kept in the warehouse (``CRMPILOT_DATABASE_URL``), and produces
``crm.case.created|updated`` to ``crm.case.events``, ``crm.email.received`` to
``crm.email.events`` and ``erp.request.submitted`` (kind lead) to
``crm.lead.events``, keyed by record id. Each object an enrichment spec of
``CRMPILOT_ENRICHMENTS_DIR`` reads as ``crm.record.*`` events (its ``crm.object``)
is polled too, into ``crm.record.created|updated`` on the spec's first source
topic. crmpilot's own write-backs are not emitted again; a person overriding an
AI field is recorded as feedback.
"""

from __future__ import annotations

from crmpilot.service import run_service

from .bootstrap import bootstrap
from .settings import Settings

if __name__ == "__main__":
    run_service("crm_source", Settings, bootstrap, __doc__)
