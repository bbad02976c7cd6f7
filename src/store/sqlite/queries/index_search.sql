INSERT INTO search (name, value, instance)
SELECT json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]'), m.id FROM instances m, json_each(m.attrs) j
WHERE true ORDER BY 1, 2, 3
ON CONFLICT DO NOTHING
