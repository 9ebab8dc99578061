-- crm_source: how far each polled CRM object has been read, and what was last seen of each record.
-- The watermark is the highest SystemModstamp fully handled; polls re-read an overlap window
-- before it, and crm_source_seen drops what was already emitted (same record, same or older stamp)
-- and keeps per-field digests so an update can say which fields changed.

create table warehouse.crm_source_watermark (
    source      text not null,
    sobject     text not null,
    watermark   timestamptz not null,
    started_at  timestamptz not null,
    updated_at  timestamptz not null default now(),
    primary key (source, sobject)
);

create table warehouse.crm_source_seen (
    source      text not null,
    sobject     text not null,
    record_id   text not null,
    modstamp    timestamptz not null,
    digests     jsonb not null,
    seen_at     timestamptz not null default now(),
    primary key (source, sobject, record_id)
);
