-- The histories of the instances $1.
DELETE FROM history WHERE instance = ANY($1::text[])
