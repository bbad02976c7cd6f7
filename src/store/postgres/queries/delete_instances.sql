-- The instances $1, if they ended before $2.
DELETE FROM instances WHERE id = ANY($1::text[]) AND ended_at < $2
