-- The histories of the instances ?1 (a JSON array of ids).
DELETE FROM history WHERE instance IN (SELECT value FROM json_each(?1))
