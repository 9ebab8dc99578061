-- 0009 score_request is an enrichment spec (crmpilot/tasks/specs/score_request.yaml):
-- its results are ai.enrichment.completed events and land in warehouse.fact_enrichment,
-- typed as bi.score_request (made from the spec by `crmpilot db migrate`). The rows of
-- warehouse.fact_request_score move there, none lost: outputs from the typed columns and
-- the stored result (reasons as the Lead's AI_Score_Reasons__c showed them; [erased] or
-- [purged] for a row already redacted), every
-- field's confidence and review the row's own, the original result event kept whole in
-- `result`. A skipped input keeps no outputs, as a skipped enrichment result has none.
-- bi.results reads fact_enrichment for them, so every view built on it counts them as before.

insert into warehouse.fact_enrichment (
    result_id, result_event_id, subject, task, enrichment_version, review_decision, record_id,
    outputs, confidence, confidence_by_field, field_review, grounding_failures, truncated_chars,
    input_skipped, result, provider, model, model_version, prompt_id, prompt_version, prompt_hash,
    input_hash, tokens_in, tokens_out, cost_usd, latency_ms, attempts, cache_hit, trace_id,
    source_topic, source_partition, source_offset, source_event_id, event_time, processed_at,
    result_topic, result_partition, result_offset, written_at, redacted, redacted_at,
    confidence_source)
select r.result_id, r.result_event_id, r.subject, 'score_request', 1, r.review_decision, r.request_id,
       case when r.input_skipped then '{}'::jsonb else jsonb_build_object(
           'score', r.score,
           'factors', coalesce(r.result -> 'factors', '[]'::jsonb),
           'risk_flags', to_jsonb(r.risk_flags),
           'next_action', r.next_action,
           'band', r.band,
           'reasons', case when r.redacted is not null then '[' || r.redacted || ']' else left(concat_ws('; ',
               (select string_agg(case when f ->> 'direction' = 'up' then '+ ' else '- ' end || (f ->> 'name'), '; '
                                  order by n)
                  from jsonb_array_elements(coalesce(r.result -> 'factors', '[]'::jsonb)) with ordinality as x(f, n)),
               (select string_agg('risk: ' || flag, '; ' order by n)
                  from unnest(r.risk_flags) with ordinality as y(flag, n))), 1000) end)
       end,
       case when r.input_skipped then null else r.confidence end,
       case when r.input_skipped or r.confidence is null then '{}'::jsonb else (
           select jsonb_object_agg(k, r.confidence)
             from unnest(array['score', 'factors', 'risk_flags', 'next_action', 'band', 'reasons']) as k) end,
       case when r.input_skipped then '{}'::jsonb else (
           select jsonb_object_agg(k, r.review_decision)
             from unnest(array['score', 'factors', 'risk_flags', 'next_action', 'band', 'reasons']) as k) end,
       '{}', r.truncated_chars, r.input_skipped, r.result, r.provider, r.model, r.model_version,
       r.prompt_id, r.prompt_version, r.prompt_hash, r.input_hash, r.tokens_in, r.tokens_out, r.cost_usd,
       r.latency_ms, r.attempts, r.cache_hit, r.trace_id, r.source_topic, r.source_partition, r.source_offset,
       r.source_event_id, r.event_time, r.processed_at, r.result_topic, r.result_partition, r.result_offset,
       r.written_at, r.redacted, r.redacted_at, r.confidence_source
  from warehouse.fact_request_score r
on conflict (result_id) do nothing;

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
  from warehouse.fact_enrichment;

drop table warehouse.fact_request_score;
