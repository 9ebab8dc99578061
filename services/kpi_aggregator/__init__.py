"""kpi_aggregator service."""
