-- The done outbox rows of the meetings ?1 (a JSON array of ids).
DELETE FROM outbox WHERE meeting_id IN (SELECT value FROM json_each(?1)) AND status = 'done'
