-- 0001 core: raw events, one fact table per AI task with full provenance,
-- CRM write audit, human feedback and the dead-letter log.
-- Times are timestamptz (stored in UTC). Kafka positions are topic, partition, offset.

create schema if not exists warehouse;

-- Every event read from a source (or result) topic, as received.
create table warehouse.raw_events (
    event_id        text primary key,
    type            text not null,
    schemaversion   integer not null,
    subject         text not null,
    source          text not null,
    event_time      timestamptz not null,
    topic           text not null,
    kafka_partition integer not null,
    kafka_offset    bigint not null,
    payload         jsonb not null,
    received_at     timestamptz not null default now()
);
create index raw_events_type_time on warehouse.raw_events (type, event_time);
create index raw_events_position on warehouse.raw_events (topic, kafka_partition, kafka_offset);
create index raw_events_subject on warehouse.raw_events (subject);

-- Facts. Each has: the result id (idempotency key), the typed columns of its task,
-- the full result JSON, provenance, and the Kafka position the result was read from.
create table warehouse.fact_ticket_classification (
    result_id           text primary key,
    result_event_id     text not null,
    subject             text not null,
    task                text not null,
    review_decision     text not null check (review_decision in ('auto_apply', 'suggest', 'skip')),
    case_id             text not null,
    category            text not null,
    priority            text not null,
    sentiment           text not null,
    language            text not null,
    queue               text not null,
    escalate            boolean not null,
    escalation_reason   text,
    confidence          double precision,  -- the lowest per-field confidence
    confidence_by_field jsonb not null,
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
    written_at          timestamptz not null default now()
);
create index fact_ticket_classification_event_time on warehouse.fact_ticket_classification (event_time);
create index fact_ticket_classification_source_event on warehouse.fact_ticket_classification (source_event_id);
create index fact_ticket_classification_case on warehouse.fact_ticket_classification (case_id);

create table warehouse.fact_email_summary (
    result_id          text primary key,
    result_event_id    text not null,
    subject            text not null,
    task               text not null,
    review_decision    text not null check (review_decision in ('auto_apply', 'suggest', 'skip')),
    email_id           text not null,
    case_id            text,
    summary            text not null,
    intent             text not null,
    sentiment          text not null,
    urgency            text not null,
    verified           boolean not null,
    action_item_count  integer not null,
    result             jsonb not null,
    provider           text not null,
    model              text not null,
    model_version      text,
    prompt_id          text not null,
    prompt_version     text not null,
    prompt_hash        text not null,
    input_hash         text not null,
    tokens_in          bigint not null,
    tokens_out         bigint not null,
    cost_usd           numeric not null,
    latency_ms         double precision not null,
    attempts           integer not null,
    cache_hit          boolean not null,
    trace_id           text,
    source_topic       text not null,
    source_partition   integer not null,
    source_offset      bigint not null,
    source_event_id    text not null,
    event_time         timestamptz not null,
    processed_at       timestamptz not null,
    result_topic       text not null,
    result_partition   integer not null,
    result_offset      bigint not null,
    written_at         timestamptz not null default now()
);
create index fact_email_summary_event_time on warehouse.fact_email_summary (event_time);
create index fact_email_summary_source_event on warehouse.fact_email_summary (source_event_id);
create index fact_email_summary_email on warehouse.fact_email_summary (email_id);

create table warehouse.fact_request_score (
    result_id          text primary key,
    result_event_id    text not null,
    subject            text not null,
    task               text not null,
    review_decision    text not null check (review_decision in ('auto_apply', 'suggest', 'skip')),
    request_id         text not null,
    kind               text not null,
    score              integer not null check (score between 0 and 100),
    band               text not null,
    next_action        text not null,
    result             jsonb not null,
    provider           text not null,
    model              text not null,
    model_version      text,
    prompt_id          text not null,
    prompt_version     text not null,
    prompt_hash        text not null,
    input_hash         text not null,
    tokens_in          bigint not null,
    tokens_out         bigint not null,
    cost_usd           numeric not null,
    latency_ms         double precision not null,
    attempts           integer not null,
    cache_hit          boolean not null,
    trace_id           text,
    source_topic       text not null,
    source_partition   integer not null,
    source_offset      bigint not null,
    source_event_id    text not null,
    event_time         timestamptz not null,
    processed_at       timestamptz not null,
    result_topic       text not null,
    result_partition   integer not null,
    result_offset      bigint not null,
    written_at         timestamptz not null default now()
);
create index fact_request_score_event_time on warehouse.fact_request_score (event_time);
create index fact_request_score_source_event on warehouse.fact_request_score (source_event_id);
create index fact_request_score_request on warehouse.fact_request_score (request_id);

-- One row per CRM field the writer touched (or decided not to touch), with the
-- value before and after, so any run can be reverted. applied_at is when the
-- outcome was recorded, whatever the status.
create table warehouse.crm_write_audit (
    id           bigint generated always as identity primary key,
    result_id    text not null,
    sobject      text not null,
    record_id    text not null,
    field        text not null,
    before_value text,
    after_value  text,
    status       text not null check (status in
                     ('applied', 'skipped_human_edit', 'skipped_not_found', 'skipped_low_confidence', 'failed', 'reverted')),
    reason       text,
    trace_id     text,
    run_id       text,
    applied_at   timestamptz not null default now(),
    reverted_at  timestamptz
);
create index crm_write_audit_applied_at on warehouse.crm_write_audit (applied_at);
create index crm_write_audit_result_id on warehouse.crm_write_audit (result_id);
create index crm_write_audit_run_id on warehouse.crm_write_audit (run_id) where run_id is not null;
create index crm_write_audit_record on warehouse.crm_write_audit (sobject, record_id, field);

-- A person changed a field the AI had filled: what the AI said, what they chose.
create table warehouse.feedback (
    event_id    text primary key,
    result_id   text,
    sobject     text not null,
    record_id   text not null,
    field       text not null,
    ai_value    text,
    human_value text,
    changed_by  text,
    changed_at  timestamptz not null,
    recorded_at timestamptz not null default now()
);
create index feedback_result_id on warehouse.feedback (result_id);
create index feedback_changed_at on warehouse.feedback (changed_at);

-- Every record a consumer group moved to a dead-letter topic, once per group and position.
create table warehouse.dlq_log (
    id              bigint generated always as identity primary key,
    consumer_group  text not null,
    topic           text not null,
    kafka_partition integer not null,
    kafka_offset    bigint not null,
    message_key     text,
    dlq_topic       text,
    error_class     text not null,
    error_code      text not null,
    error_message   text not null,
    attempts        integer not null,
    failed_at       timestamptz not null,
    unique (consumer_group, topic, kafka_partition, kafka_offset)
);
create index dlq_log_failed_at on warehouse.dlq_log (failed_at);
