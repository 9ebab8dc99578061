-- 0004 kpi: live KPI windows from kpi_aggregator, and daily variants of two BI
-- views so a dashboard can limit every figure to a period.

-- One row per tumbling window, task and dimension ('all' or '<field>=<value>'),
-- upserted by kpi_aggregator with the window's aggregate so far (idempotent:
-- writing the same window again changes nothing; counts never go down).
create table warehouse.kpi_window (
    window_start    timestamptz not null,
    window_size     integer not null check (window_size > 0),  -- seconds
    task            text not null,
    dimension       text not null,
    results         bigint not null check (results >= 0),
    auto_applied    bigint not null,
    suggested       bigint not null,
    skipped         bigint not null,
    cache_hits      bigint not null,
    cost_usd        numeric not null,
    tokens_in       bigint not null,
    tokens_out      bigint not null,
    p95_latency_ms  double precision,  -- from a sketch: within 1 % of the exact p95
    max_latency_ms  double precision,
    updated_at      timestamptz not null default now(),
    primary key (window_start, window_size, task, dimension)
);
create index kpi_window_size_start on warehouse.kpi_window (window_size, window_start);

-- The KPI windows with their end and rates.
create view bi.kpi_window as
select window_start, window_start + make_interval(secs => window_size) as window_end, window_size,
       task, dimension, results, auto_applied, suggested, skipped,
       round(auto_applied::numeric / nullif(results, 0), 4) as automation_rate,
       p95_latency_ms, max_latency_ms, cache_hits, tokens_in, tokens_out, cost_usd,
       round(cost_usd * 1000 / nullif(results, 0), 6) as cost_usd_per_1000,
       updated_at
  from warehouse.kpi_window;

-- bi.override_rate per day of the CRM write.
create view bi.override_rate_daily as
with written as (
    select result_id, field, min(applied_at) as applied_at
      from warehouse.crm_write_audit
     where status in ('applied', 'reverted')
     group by 1, 2
), overridden as (
    select distinct result_id, field
      from warehouse.feedback
     where result_id is not null
)
select (w.applied_at at time zone 'UTC')::date as day, r.task, w.field, r.prompt_id, r.prompt_version,
       count(*) as written,
       count(o.result_id) as overridden,
       round(count(o.result_id)::numeric / count(*), 4) as override_rate
  from written w
  join bi.results r on r.result_id = w.result_id
  left join overridden o on o.result_id = w.result_id and o.field = w.field
 group by 1, 2, 3, 4, 5;

-- bi.confidence_distribution per day (by source event time).
create view bi.confidence_distribution_daily as
with values_ as (
    select t.event_time, t.task, c.key as field, c.value::double precision as confidence, t.review_decision
      from warehouse.fact_ticket_classification t
     cross join lateral jsonb_each_text(t.confidence_by_field) c
    union all
    select event_time, task, 'overall', confidence, review_decision
      from warehouse.fact_ticket_classification
     where confidence is not null
)
select (event_time at time zone 'UTC')::date as day, task, field, review_decision,
       (least(greatest(floor(confidence * 10), 0), 9) / 10)::numeric(2, 1) as bucket,
       count(*) as results
  from values_
 group by 1, 2, 3, 4, 5;
