-- The instances of a JSON array of ids, as one JSON document.
SELECT json_group_array(json(doc)) FROM instance_docs WHERE id IN (SELECT value FROM json_each(?1))
