-- The store keeps any machine's instances: the tables say so (`instances`,
-- a column `instance` where rows belong to one). Renames only: nothing is
-- copied (PostgreSQL's tables are heaps already; SQLite's 0011 also moves
-- its instances to a rowid table).

DROP VIEW meeting_docs;

ALTER TABLE meetings RENAME TO instances;
ALTER INDEX meetings_due RENAME TO instances_due;
ALTER INDEX meetings_ended RENAME TO instances_ended;
ALTER INDEX meetings_remembering RENAME TO instances_remembering;

ALTER TABLE history RENAME COLUMN meeting_id TO instance;
ALTER INDEX history_meeting RENAME TO history_instance;
ALTER TABLE outbox RENAME COLUMN meeting_id TO instance;
ALTER INDEX outbox_meeting RENAME TO outbox_instance;
ALTER TABLE search RENAME COLUMN meeting_id TO instance;
ALTER INDEX search_meeting RENAME TO search_instance;
ALTER INDEX meetings_pkey RENAME TO instances_pkey;

CREATE VIEW instance_docs AS
SELECT id, state, reason, next_due, json_build_array(id, version, event_ids::json, doc::json) AS doc
FROM instances;
ALTER TABLE prune_log RENAME COLUMN meetings TO instances;
