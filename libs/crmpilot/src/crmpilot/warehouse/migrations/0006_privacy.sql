-- 0006 privacy: erasing one person's data (`crmpilot erase`) and purging old free text
-- (`crmpilot db purge`). Rows are anonymised in place rather than deleted, so the BI
-- views keep their counts, costs and rates, and a replayed event or result is still
-- absorbed by its primary key instead of coming back. `redacted` says which rows were
-- anonymised and why ('erased': a person's erasure; 'purged': the retention limit).

alter table warehouse.raw_events
    add column redacted    text check (redacted in ('erased', 'purged')),
    add column redacted_at timestamptz;
alter table warehouse.fact_ticket_classification
    add column redacted    text check (redacted in ('erased', 'purged')),
    add column redacted_at timestamptz;
alter table warehouse.fact_email_summary
    add column redacted    text check (redacted in ('erased', 'purged')),
    add column redacted_at timestamptz;
alter table warehouse.fact_request_score
    add column redacted    text check (redacted in ('erased', 'purged')),
    add column redacted_at timestamptz;
alter table warehouse.crm_write_audit
    add column redacted    text check (redacted in ('erased', 'purged')),
    add column redacted_at timestamptz;
alter table warehouse.feedback
    add column redacted    text check (redacted in ('erased', 'purged')),
    add column redacted_at timestamptz;
alter table warehouse.dlq_log
    add column redacted    text check (redacted in ('erased', 'purged')),
    add column redacted_at timestamptz;

-- One row per erasure request carried out (dry runs are not recorded). The subject
-- itself is never stored: only the SHA-256 of its normalised form, so "was this
-- person erased?" can be answered by hashing the address again.
create table warehouse.erasures (
    id            bigint generated always as identity primary key,
    subject_hash  text not null check (subject_hash ~ '^[0-9a-f]{64}$'),
    subject_kind  text not null check (subject_kind in ('email', 'id')),
    requested_at  timestamptz not null default now(),
    operator      text not null,
    rows_touched  jsonb not null,  -- {"<schema>.<table>": {"anonymised": n, "deleted": m}}
    total_rows    integer not null check (total_rows >= 0)
);
create index erasures_subject_hash on warehouse.erasures (subject_hash);

-- One row per retention purge carried out (dry runs are not recorded).
create table warehouse.retention_purges (
    id              bigint generated always as identity primary key,
    older_than_days integer not null check (older_than_days >= 1),
    cutoff          timestamptz not null,
    requested_at    timestamptz not null default now(),
    operator        text not null,
    rows_touched    jsonb not null,  -- {"<schema>.<table>": {"anonymised": n, "deleted": m}}
    total_rows      integer not null check (total_rows >= 0)
);
