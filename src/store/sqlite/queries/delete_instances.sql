-- The instances ?1 (a JSON array of ids), if they ended before ?2.
DELETE FROM instances WHERE id IN (SELECT value FROM json_each(?1)) AND ended_at < ?2
