-- The search attributes of those of the instances $1 that are gone.
DELETE FROM search WHERE instance = ANY($1::text[])
    AND NOT EXISTS (SELECT 1 FROM instances WHERE instances.id = search.instance)
