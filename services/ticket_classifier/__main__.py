"""``python -m ticket_classifier``: classify support cases from Kafka.

Reads case events from ``crm.case.events`` and writes ``ai.ticket.classified``.
Settings come from the environment: ``CRMPILOT_TICKET_CLASSIFIER_*``,
``CRMPILOT_LLM_*`` (provider: local by default) and ``CRMPILOT_KAFKA_*``.
"""

from __future__ import annotations

from crmpilot.service import run_service

from .bootstrap import bootstrap
from .settings import Settings

if __name__ == "__main__":
    run_service("ticket_classifier", Settings, bootstrap, __doc__)
