-- The meetings of an array of ids, one document each, locked until the unit
-- of work ends (in id order, so that two workers locking overlapping sets
-- cannot deadlock). A row changed while we waited is returned as committed.
SELECT doc::text FROM meeting_docs WHERE id = ANY($1) ORDER BY id FOR UPDATE
