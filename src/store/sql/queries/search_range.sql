-- A search attribute's (value, instance) pairs in a range, in order, paged by the last pair.
SELECT value, instance FROM search
WHERE name = $1 AND (value, instance) > ($2, $3) AND value <= $4
ORDER BY value, instance LIMIT $5
