-- The search attributes of those of the instances $1 (a JSON array of ids) that are gone.
DELETE FROM search WHERE instance IN (SELECT value FROM json_each($1))
    AND NOT EXISTS (SELECT 1 FROM instances WHERE instances.id = search.instance)
