-- The histories of the meetings ?1 (a JSON array of ids).
DELETE FROM history WHERE meeting_id IN (SELECT value FROM json_each(?1))
