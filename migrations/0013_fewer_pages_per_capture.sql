-- Fewer pages written per capture. A capture's write lock is held while its statement
-- writes every b-tree it touches and while the commit syncs those pages to the WAL: a new lead
-- wrote 16 pages, a one-row INSERT writes one or two; it now writes 10. Three of the 16 held a
-- copy of what the lead's own row holds: the first timeline entry (`captured`, or
-- `systeme_contact` for a lead Systeme.io created) was a row of `lead_events`, with its index
-- entry and its `sqlite_sequence` update (AUTOINCREMENT). For a capture it now lives in the
-- lead's row, `first_event` (existing entries move there below): the entry's detail as it was
-- when the lead was stored (a repeat post changes `form` and `tags`, not this); its kind and time
-- are the lead's `source` and `created_at`. The dashboard's timeline reads it before the lead's
-- events. One more page went to `leads_tenant_stage_id`, which no query used: the lead list's
-- optional stage filter (`?2 IS NULL OR stage = ?2`) was planned once for both cases and walked
-- `leads_tenant_id` (EXPLAIN QUERY PLAN, with and without ANALYZE). It becomes
-- `leads_tenant_stage_moved`, which holds only leads whose stage has left `new` (a capture writes
-- no entry), and the dashboard searches it for any other stage. And one page went to
-- `leads_email`, whose only reader is a sale matched by email across tenants: that search now
-- seeks `leads_tenant_email` once per tenant (systeme-events).
--
-- The backfill rewrites every lead row once, in the migration's one transaction, during which
-- writers wait and, past their retry budget, get `503 storage_unavailable` with `Retry-After`.

DROP INDEX IF EXISTS leads_tenant_stage_id;

CREATE INDEX leads_tenant_stage_moved ON leads (tenant_id, stage, id) WHERE stage != 'new';

DROP INDEX IF EXISTS leads_email;

ALTER TABLE leads ADD COLUMN first_event TEXT;

UPDATE leads SET first_event = (
    SELECT detail FROM lead_events
    WHERE lead_events.tenant_id = leads.tenant_id AND lead_events.lead_id = leads.id
        AND lead_events.kind IN ('captured', 'systeme_contact')
    ORDER BY lead_events.id LIMIT 1);

DELETE FROM lead_events WHERE kind IN ('captured', 'systeme_contact');

-- Triggers live in schema/default/triggers/; the runner re-creates them after migrating.
