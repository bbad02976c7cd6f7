-- A page of the spec's outcome lines in id order ($1 after this id, $2 limit), as one JSON document.
SELECT COALESCE(json_agg(json_build_array(id, state, reason, terminated_at, instances::json) ORDER BY id), '[]')::text
FROM (
    SELECT id, state, reason, terminated_at, instances FROM meetings
    WHERE id > COALESCE($1, '') ORDER BY id LIMIT $2
) page
