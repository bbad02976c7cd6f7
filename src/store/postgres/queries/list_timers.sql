SELECT (j->>1)::bigint AS due, (j->>0)::bigint AS kind, m.id
FROM instances m, jsonb_array_elements(m.timers::jsonb) j
WHERE m.next_due IS NOT NULL AND ($1::text IS NULL OR m.id = $1)
ORDER BY due, kind, m.id LIMIT $2
