"""``python -m enricher --enrichment NAME``: run one declared enrichment from Kafka.

Reads the spec NAME from the folder(s) in ``CRMPILOT_ENRICHMENTS_DIR``, consumes the
spec's source topics and writes ``ai.enrichment.completed`` results to its output
topic. A spec that cannot run (a bad file, an unknown hook, a field the configured
model cannot answer) is refused at start with the file, the line and the reason.
Settings: ``CRMPILOT_ENRICHER_*``, ``CRMPILOT_LLM_*`` (local model by default),
``CRMPILOT_KAFKA_*``.
"""

from __future__ import annotations

from crmpilot.service import run_service

from .bootstrap import bootstrap
from .settings import Settings

if __name__ == "__main__":
    run_service("enricher", Settings, bootstrap, __doc__, options={"enrichment": "enrichment"})
