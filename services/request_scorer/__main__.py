"""``python -m request_scorer``: score incoming requests and leads from Kafka.

Reads request events from ``erp.request.events`` and lead events from
``crm.lead.events`` (both ``erp.request.submitted``) and writes
``ai.request.scored``. Settings come from the environment:
``CRMPILOT_REQUEST_SCORER_*``, ``CRMPILOT_LLM_*`` (provider: local by default)
and ``CRMPILOT_KAFKA_*``.
"""

from __future__ import annotations

from crmpilot.service import run_service

from .bootstrap import bootstrap
from .settings import Settings

if __name__ == "__main__":
    run_service("request_scorer", Settings, bootstrap, __doc__)
