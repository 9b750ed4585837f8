-- Fewer triggers: under Spin every request opens a new SQLite connection, which parses every
-- trigger body before its first statement, so the triggers on leads and on event_applications
-- became fewer and shorter at this version.
-- Triggers live in schema/default/triggers/; the runner re-creates them after migrating.

-- `systeme_messages`, unread since migration 0007, goes.
DROP TABLE systeme_messages;
