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

-- `leads_inserted` (migration 0012), with the timeline row kept only for a lead stored without
-- `first_event`. Capture's `INSERT` (lead-capture), the hot path, sets it itself, `{"form": …,
-- "tags": […]}` as the old row had it: an `UPDATE` of the new row from this trigger would keep
-- the rule in one place, but it is compiled into every capture statement, where it adds to
-- the statement's compile and run time. Every other
-- insert gets its first entry as a `lead_events` row, as before: a contact Systeme.io created
-- (the callback trigger, rare next to captures, is left as migration 0012 wrote it), and a lead a
-- replica still running the code from before this migration stores during a rolling deploy. The
-- dashboard's timeline reads both, so no entry is lost; for a capture the step is compiled but
-- writes nothing.
DROP TRIGGER leads_inserted;

CREATE TRIGGER leads_inserted AFTER INSERT ON leads
BEGIN
    INSERT INTO lead_events (tenant_id, lead_id, kind, detail, created_at)
    SELECT NEW.tenant_id, NEW.id, CASE NEW.source WHEN 'systeme' THEN 'systeme_contact' ELSE 'captured' END,
        json_object('form', NEW.form, 'tags', json(NEW.tags)), NEW.created_at
    WHERE NEW.first_event IS NULL;
    UPDATE tenants SET lead_count = lead_count + 1 WHERE id = NEW.tenant_id;
    INSERT INTO daily_rollups (tenant_id, day, leads)
    VALUES (NEW.tenant_id, substr(NEW.created_at, 1, 10), 1)
    ON CONFLICT (tenant_id, day) DO UPDATE SET leads = leads + 1;
    INSERT INTO lead_facets (tenant_id, facet, value, n) VALUES
        (NEW.tenant_id, 'stage', NEW.stage, 1),
        (NEW.tenant_id, 'sync', NEW.sync_status, 1),
        (NEW.tenant_id, 'ib_type', COALESCE(NEW.ib_type, ''), 1),
        (NEW.tenant_id, 'volume', COALESCE(NEW.volume, ''), 1),
        (NEW.tenant_id, 'utm_source', COALESCE(NEW.utm_source, ''), 1)
    ON CONFLICT (tenant_id, facet, value) DO UPDATE SET n = n + 1;
    INSERT INTO capture_rate (tenant_id, client, window_start, hits)
    SELECT NEW.tenant_id, NEW.client, (CAST(strftime('%s', NEW.updated_at) AS INTEGER) / 60) * 60, 1
    WHERE NEW.client IS NOT NULL
    ON CONFLICT (tenant_id, client) DO UPDATE SET
        hits = CASE WHEN capture_rate.window_start = excluded.window_start THEN capture_rate.hits + 1 ELSE 1 END,
        window_start = excluded.window_start;
END;
