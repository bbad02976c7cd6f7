-- Meetings whose search attribute $1 has the value $2, by id, at most $3 (primary key lookup).
SELECT instance FROM search WHERE name = $1 AND value = $2 ORDER BY instance LIMIT $3
