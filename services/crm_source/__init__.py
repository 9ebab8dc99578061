"""crm_source service: CRM changes in, ``crm.*`` events out (``python -m crm_source``)."""
