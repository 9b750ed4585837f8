-- Capture's rate limit rides on the lead write itself: the lead upsert only proceeds while the
-- client's window is under the limit, and triggers count the hit in the same statement. One
-- autocommit statement per captured lead instead of a transaction of two.

ALTER TABLE leads ADD COLUMN client TEXT;

-- Triggers live in schema/default/triggers/; the runner re-creates them after migrating.
