-- The instances of an array of ids, one document each, locked until the unit
-- of work ends (in id order, so that two workers locking overlapping sets
-- cannot deadlock). A row changed while we waited is returned as committed.
-- (A join on the unnested ids: see load_instances.sql.)
SELECT d.doc::text FROM unnest($1::text[]) AS k(id) JOIN instance_docs d ON d.id = k.id ORDER BY d.id FOR UPDATE OF d
