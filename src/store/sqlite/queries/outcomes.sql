-- A page of the spec's outcome lines in id order (?1 after this id, ?2 limit), as one JSON document.
SELECT json_group_array(json_array(id, state, reason, terminated_at, json(instances)) ORDER BY id) FROM (
    SELECT id, state, reason, terminated_at, instances FROM meetings
    WHERE id > COALESCE(?1, '') ORDER BY id LIMIT ?2
)
