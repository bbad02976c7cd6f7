-- The done outbox rows of the instances ?1 (a JSON array of ids).
DELETE FROM outbox WHERE instance IN (SELECT value FROM json_each(?1)) AND status = 'done'
