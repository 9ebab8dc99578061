"""``python -m warehouse_writer``: store results (with provenance) and source events in PostgreSQL.

Reads the ``ai.*`` result topics and the CRM/ERP source topics; writes the
``warehouse`` schema migrated by ``crmpilot db migrate``. Settings:
``CRMPILOT_WAREHOUSE_WRITER_*``, ``CRMPILOT_DATABASE_URL``, ``CRMPILOT_KAFKA_*``.
"""

from __future__ import annotations

from crmpilot.service import run_service

from .bootstrap import bootstrap
from .settings import Settings

if __name__ == "__main__":
    run_service("warehouse_writer", Settings, bootstrap, __doc__)
