-- 0007 enrichments: one fact table for the results of every declared enrichment
-- (`ai.enrichment.completed`), and bi.results re-created to include them, so every
-- view built on it (volume, automation, cost, overrides, DLQ rate, CRM latency)
-- counts them too. The typed view of each enrichment, bi.<name>, is made from its
-- spec by `crmpilot db migrate` (crmpilot.enrichments.warehouse), not here: it
-- follows the deployment's spec files.
-- bi.ticket_volume_daily and bi.confidence_distribution(_daily) stay ticket-only.

create table warehouse.fact_enrichment (
    result_id           text primary key,
    result_event_id     text not null,
    subject             text not null,
    task                text not null,  -- the enrichment's name (its spec's `name`)
    enrichment_version  integer not null check (enrichment_version >= 1),
    review_decision     text not null check (review_decision in ('auto_apply', 'suggest', 'skip')),
    record_id           text not null,
    outputs             jsonb not null,  -- {"<output field>": value}, as validated against the spec
    confidence          double precision check (confidence between 0 and 1),  -- the lowest per-field confidence
    confidence_by_field jsonb not null,
    field_review        jsonb not null,  -- {"<output field>": "auto_apply" | "suggest" | "skip"}
    grounding_failures  text[] not null default '{}',
    truncated_chars     integer not null default 0 check (truncated_chars >= 0),
    input_skipped       boolean not null default false,
    result              jsonb not null,
    provider            text not null,
    model               text not null,
    model_version       text,
    prompt_id           text not null,
    prompt_version      text not null,
    prompt_hash         text not null,
    input_hash          text not null,
    tokens_in           bigint not null,
    tokens_out          bigint not null,
    cost_usd            numeric not null,
    latency_ms          double precision not null,
    attempts            integer not null,
    cache_hit           boolean not null,
    trace_id            text,
    source_topic        text not null,
    source_partition    integer not null,
    source_offset       bigint not null,
    source_event_id     text not null,
    event_time          timestamptz not null,
    processed_at        timestamptz not null,
    result_topic        text not null,
    result_partition    integer not null,
    result_offset       bigint not null,
    written_at          timestamptz not null default now(),
    redacted            text check (redacted in ('erased', 'purged')),  -- as in 0006
    redacted_at         timestamptz
);
create index fact_enrichment_task_event_time on warehouse.fact_enrichment (task, event_time);
create index fact_enrichment_source_event on warehouse.fact_enrichment (source_event_id);
create index fact_enrichment_record on warehouse.fact_enrichment (record_id);

-- 0002's bi.results with the enrichments added (same columns, same order).
create or replace view bi.results as
select task, result_id, subject, review_decision, provider, model, model_version,
       prompt_id, prompt_version, tokens_in, tokens_out, cost_usd, latency_ms, attempts,
       cache_hit, trace_id, source_event_id, event_time, processed_at, written_at,
       result_topic, result_partition, result_offset
  from warehouse.fact_ticket_classification
union all
select task, result_id, subject, review_decision, provider, model, model_version,
       prompt_id, prompt_version, tokens_in, tokens_out, cost_usd, latency_ms, attempts,
       cache_hit, trace_id, source_event_id, event_time, processed_at, written_at,
       result_topic, result_partition, result_offset
  from warehouse.fact_email_summary
union all
select task, result_id, subject, review_decision, provider, model, model_version,
       prompt_id, prompt_version, tokens_in, tokens_out, cost_usd, latency_ms, attempts,
       cache_hit, trace_id, source_event_id, event_time, processed_at, written_at,
       result_topic, result_partition, result_offset
  from warehouse.fact_request_score
union all
select task, result_id, subject, review_decision, provider, model, model_version,
       prompt_id, prompt_version, tokens_in, tokens_out, cost_usd, latency_ms, attempts,
       cache_hit, trace_id, source_event_id, event_time, processed_at, written_at,
       result_topic, result_partition, result_offset
  from warehouse.fact_enrichment;
