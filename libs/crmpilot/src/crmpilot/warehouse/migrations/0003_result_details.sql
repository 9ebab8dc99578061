-- 0003 result details: what the result events carry beyond 0001's columns.
-- Every task: the characters a token budget cut from the input, and whether the
-- input was skipped (empty or not text; the reason is in result->'skipped').
-- Email summaries: confidence, entity count and the grounding failures behind
-- verified = false. Request scores: confidence and risk flags.
-- Defaults fill the rows written before this migration.

alter table warehouse.fact_ticket_classification
    add column truncated_chars integer not null default 0 check (truncated_chars >= 0),
    add column input_skipped   boolean not null default false;

alter table warehouse.fact_email_summary
    add column confidence         double precision check (confidence between 0 and 1),
    add column entity_count       integer not null default 0,
    add column grounding_failures text[] not null default '{}',
    add column truncated_chars    integer not null default 0 check (truncated_chars >= 0),
    add column input_skipped      boolean not null default false;

alter table warehouse.fact_request_score
    add column confidence      double precision check (confidence between 0 and 1),
    add column risk_flags      text[] not null default '{}',
    add column truncated_chars integer not null default 0 check (truncated_chars >= 0),
    add column input_skipped   boolean not null default false;
