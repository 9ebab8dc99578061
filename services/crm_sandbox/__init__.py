"""crm_sandbox: a Salesforce REST API-compatible org for crmpilot's dev, demo and tests.

Run it with `python -m crm_sandbox [--seed demo]`; drive it with the real
simple-salesforce (`crm_sandbox.client.sandbox_salesforce`). Layout:
`settings` (env), `server` + `tls` (uvicorn over HTTPS), `app` (HTTP), `auth`
and `faults` (sessions, injected failures), `service` (the org's operations),
`soql` + `query` (queries), `validation` + `schema` (fields), `store` (port and
PostgreSQL adapter; `memstore` for unit tests), `seed` (demo data), `cdc`
(change events).
"""
