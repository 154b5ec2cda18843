-- Events live in the append-only event log beside the database (src/eventlog.rs); the migration code
-- copies them there before this runs.
DROP TABLE events;
