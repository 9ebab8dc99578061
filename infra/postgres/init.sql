-- Role and database of the crmpilot local stack. Run by infra/stack.sh through
-- the unix socket as the cluster superuser on every `pg-up`; idempotent.
-- psql variables: pg_user, pg_password, pg_db.
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'pg_user', :'pg_password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'pg_user') \gexec
SELECT format('ALTER ROLE %I LOGIN CREATEDB PASSWORD %L', :'pg_user', :'pg_password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'pg_db', :'pg_user')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'pg_db') \gexec
