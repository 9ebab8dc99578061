-- 0010 whether an enrichment's result was for the CRM: false when its spec's crm.where
-- left the record out (a quote, a purchase or a credit request for score_request, which
-- writes leads only) or the spec has no CRM target. bi.<name> shows it as its last
-- column (`crmpilot db migrate` re-creates the views), so an analyst can tell the results
-- that could be written from those that were never meant to be. Rows from before: the
-- flag their result event carries, and for the request scores migration 0009 moved, the
-- kind their old result names (only a lead was written).

alter table warehouse.fact_enrichment add column to_crm boolean not null default true;

update warehouse.fact_enrichment set to_crm = false where result ->> 'to_crm' = 'false';
update warehouse.fact_enrichment set to_crm = (result ->> 'kind' = 'lead')
 where task = 'score_request' and result ? 'kind' and not result ? 'to_crm';
