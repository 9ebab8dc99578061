-- 0008 where a result's confidence came from: 'logprobs' (the probabilities of the tokens
-- the model wrote), 'self_report' (the number the model was asked to give), 'local' (the
-- embedded model's scores). Null for results made before this column, and for skipped
-- inputs (no model was asked). Compare calibration by source:
--   select confidence_source, count(*) from warehouse.fact_ticket_classification group by 1;

alter table warehouse.fact_ticket_classification
    add column confidence_source text check (confidence_source in ('logprobs', 'self_report', 'local'));
alter table warehouse.fact_email_summary
    add column confidence_source text check (confidence_source in ('logprobs', 'self_report', 'local'));
alter table warehouse.fact_request_score
    add column confidence_source text check (confidence_source in ('logprobs', 'self_report', 'local'));
alter table warehouse.fact_enrichment
    add column confidence_source text check (confidence_source in ('logprobs', 'self_report', 'local'));
