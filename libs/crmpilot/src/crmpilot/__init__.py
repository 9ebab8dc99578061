"""crmpilot: LLM enrichment for CRM/ERP/BI events on Apache Kafka."""
