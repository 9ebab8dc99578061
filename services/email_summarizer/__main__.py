"""``python -m email_summarizer``: summarize customer emails from Kafka.

Reads email events from ``crm.email.events`` and writes ``ai.email.summarized``.
Settings come from the environment: ``CRMPILOT_EMAIL_SUMMARIZER_*``,
``CRMPILOT_LLM_*`` (provider: local by default) and ``CRMPILOT_KAFKA_*``.
"""

from __future__ import annotations

from crmpilot.service import run_service

from .bootstrap import bootstrap
from .settings import Settings

if __name__ == "__main__":
    run_service("email_summarizer", Settings, bootstrap, __doc__)
