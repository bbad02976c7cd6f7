-- Every state change of a meeting moved an entry in this index; `list
-- --state/--reason` and `status` scan the table instead (fast enough for a
-- command, and the hot path writes one B-tree less).
DROP INDEX IF EXISTS meetings_state;
