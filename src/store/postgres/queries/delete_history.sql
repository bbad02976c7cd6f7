-- The histories of the meetings $1.
DELETE FROM history WHERE meeting_id = ANY($1::text[])
