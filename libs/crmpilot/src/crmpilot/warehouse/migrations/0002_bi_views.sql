-- 0002 bi: views a BI tool can read directly. Days are UTC calendar days.
-- Rates are fractions (0..1) rounded to 4 places.

create schema if not exists bi;

-- Every AI result of every task, with its provenance: the base of most views.
create view bi.results as
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
  from warehouse.fact_request_score;

-- How many results each task produced per day (by source event time).
create view bi.volume_daily as
select (event_time at time zone 'UTC')::date as day, task, count(*) as results
  from bi.results
 group by 1, 2;

-- Ticket volume by category and priority per day (by source event time).
create view bi.ticket_volume_daily as
select (event_time at time zone 'UTC')::date as day, category, priority, count(*) as tickets
  from warehouse.fact_ticket_classification
 group by 1, 2, 3;

-- The AI's own decision per result: applied automatically, suggested for review, or skipped.
create view bi.automation_rate_daily as
select (event_time at time zone 'UTC')::date as day, task,
       count(*) as results,
       count(*) filter (where review_decision = 'auto_apply') as auto_applied,
       count(*) filter (where review_decision = 'suggest') as suggested,
       count(*) filter (where review_decision = 'skip') as skipped,
       round(count(*) filter (where review_decision = 'auto_apply')::numeric / count(*), 4) as automation_rate
  from bi.results
 group by 1, 2;

-- What actually happened in the CRM, per field and outcome (by time recorded).
create view bi.crm_write_outcomes_daily as
select (applied_at at time zone 'UTC')::date as day, sobject, field, status, count(*) as writes
  from warehouse.crm_write_audit
 group by 1, 2, 3, 4;

-- Cost and tokens per day, task, provider and model, also per 1,000 results.
create view bi.cost_daily as
select (event_time at time zone 'UTC')::date as day, task, provider, model,
       count(*) as results,
       count(*) filter (where cache_hit) as cache_hits,
       sum(tokens_in) as tokens_in,
       sum(tokens_out) as tokens_out,
       sum(cost_usd) as cost_usd,
       round(sum(cost_usd) * 1000 / count(*), 6) as cost_usd_per_1000,
       round((sum(tokens_in) + sum(tokens_out)) * 1000.0 / count(*), 1) as tokens_per_1000
  from bi.results
 group by 1, 2, 3, 4;

-- The same over all time, per task and model.
create view bi.cost_by_task_model as
select task, provider, model,
       count(*) as results,
       sum(tokens_in) as tokens_in,
       sum(tokens_out) as tokens_out,
       sum(cost_usd) as cost_usd,
       round(sum(cost_usd) * 1000 / count(*), 6) as cost_usd_per_1000,
       round((sum(tokens_in) + sum(tokens_out)) * 1000.0 / count(*), 1) as tokens_per_1000
  from bi.results
 group by 1, 2, 3;

-- The quality signal: of the AI values written to a CRM field, how many a person
-- later changed, by task, field and prompt version.
create view bi.override_rate as
with written as (
    select distinct result_id, field
      from warehouse.crm_write_audit
     where status in ('applied', 'reverted')
), overridden as (
    select distinct result_id, field
      from warehouse.feedback
     where result_id is not null
)
select r.task, w.field, r.prompt_id, r.prompt_version,
       count(*) as written,
       count(o.result_id) as overridden,
       round(count(o.result_id)::numeric / count(*), 4) as override_rate
  from written w
  join bi.results r on r.result_id = w.result_id
  left join overridden o on o.result_id = w.result_id and o.field = w.field
 group by 1, 2, 3, 4;

-- Ticket confidence in buckets of 0.1 (bucket 0.9 holds 0.9..1.0), per field and
-- for the lowest field ('overall'), split by the review decision taken.
create view bi.confidence_distribution as
with values_ as (
    select t.task, c.key as field, c.value::double precision as confidence, t.review_decision
      from warehouse.fact_ticket_classification t
     cross join lateral jsonb_each_text(t.confidence_by_field) c
    union all
    select task, 'overall', confidence, review_decision
      from warehouse.fact_ticket_classification
     where confidence is not null
)
select task, field, review_decision,
       (least(greatest(floor(confidence * 10), 0), 9) / 10)::numeric(2, 1) as bucket,
       count(*) as results
  from values_
 group by 1, 2, 3, 4;

-- Share of records per topic and day that a consumer moved to a dead-letter topic.
-- A record counts once per day whether it was stored as a raw event, as a result,
-- or only dead-lettered (poison that never decoded).
create view bi.dlq_rate_daily as
with seen as (
    select (received_at at time zone 'UTC')::date as day, topic, kafka_partition, kafka_offset
      from warehouse.raw_events
    union
    select (written_at at time zone 'UTC')::date, result_topic, result_partition, result_offset
      from bi.results
    union
    select (failed_at at time zone 'UTC')::date, topic, kafka_partition, kafka_offset
      from warehouse.dlq_log
), dead as (
    select distinct (failed_at at time zone 'UTC')::date as day, topic, kafka_partition, kafka_offset
      from warehouse.dlq_log
)
select s.day, s.topic,
       count(*) as records,
       count(d.topic) as dead_lettered,
       round(count(d.topic)::numeric / count(*), 4) as dlq_rate
  from seen s
  left join dead d using (day, topic, kafka_partition, kafka_offset)
 group by 1, 2;

-- Time from the source event to the CRM field being written, one row per write.
create view bi.event_to_crm_latency as
select a.id as audit_id, r.task, a.sobject, a.record_id, a.field, a.result_id,
       r.event_time, a.applied_at,
       extract(epoch from a.applied_at - r.event_time)::double precision as latency_seconds
  from warehouse.crm_write_audit a
  join bi.results r on r.result_id = a.result_id
 where a.status in ('applied', 'reverted');

-- The same per day (of the write), task and field: median, p95 and maximum.
create view bi.event_to_crm_latency_daily as
select (applied_at at time zone 'UTC')::date as day, task, sobject, field,
       count(*) as writes,
       percentile_cont(0.5) within group (order by latency_seconds) as p50_seconds,
       percentile_cont(0.95) within group (order by latency_seconds) as p95_seconds,
       max(latency_seconds) as max_seconds
  from bi.event_to_crm_latency
 group by 1, 2, 3, 4;
