-- A search attribute's (value, instance) pairs in a range, in order, paged by the last pair.
SELECT value, meeting_id FROM search
WHERE name = $1 AND (value, meeting_id) > ($2, $3) AND value <= $4
ORDER BY value, meeting_id LIMIT $5
