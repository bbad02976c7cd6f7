INSERT INTO search (name, value, instance)
SELECT j->>0, j->>1, m.id FROM instances m, json_array_elements(m.attrs::json) j ORDER BY 1, 2, 3
ON CONFLICT DO NOTHING
