SELECT json_group_array(json_array(id, state, reason, ended_at, json(attrs)) ORDER BY id) FROM (
    SELECT id, state, reason, ended_at, attrs FROM instances
    WHERE id > COALESCE(?1, '') ORDER BY id LIMIT ?2
)
