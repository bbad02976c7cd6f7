-- The meetings $1, if they ended before $2.
DELETE FROM meetings WHERE id = ANY($1::text[]) AND ended_at < $2
