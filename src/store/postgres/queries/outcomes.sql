SELECT COALESCE(json_agg(json_build_array(id, state, reason, ended_at, attrs::json) ORDER BY id), '[]')::text
FROM (
    SELECT id, state, reason, ended_at, attrs FROM instances
    WHERE id > COALESCE($1, '') ORDER BY id LIMIT $2
) page
