SELECT json_extract(j.value, '$[1]') AS due, json_extract(j.value, '$[0]') AS kind, m.id
FROM instances m, json_each(m.timers) j
WHERE m.next_due IS NOT NULL AND (?1 IS NULL OR m.id = ?1)
ORDER BY due, kind, m.id LIMIT ?2
