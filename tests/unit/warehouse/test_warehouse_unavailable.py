"""A warehouse whose database cannot be reached raises a retryable error, not a psycopg one."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import SecretStr

from crmpilot.errors import Retryable
from crmpilot.events import Envelope, TicketClassification
from crmpilot.settings import DatabaseSettings
from crmpilot.warehouse import KafkaPosition, PostgresWarehouse, WarehouseUnavailable


def test_unreachable_database_raises_warehouse_unavailable(
    ticket: Callable[..., Envelope[TicketClassification]],
) -> None:
    settings = DatabaseSettings(url=SecretStr("postgresql://crmpilot:pw@127.0.0.1:1/crmpilot"))
    with PostgresWarehouse.connect(settings, timeout=0.5) as wh:
        with pytest.raises(WarehouseUnavailable, match="crmpilot@127.0.0.1:1/crmpilot") as caught:
            wh.write_results([(ticket(), KafkaPosition("ai.ticket.classified", 0, 1))])
    assert isinstance(caught.value, Retryable)
