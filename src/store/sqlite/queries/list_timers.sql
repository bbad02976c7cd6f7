-- Pending timers (of meeting ?1, or all), in fire order, at most ?2.
SELECT due, kind, id FROM (
    SELECT id, 0 AS kind, safety_net AS due FROM meetings WHERE next_due IS NOT NULL AND safety_net IS NOT NULL
    UNION ALL SELECT id, 1, recheck FROM meetings WHERE next_due IS NOT NULL AND recheck IS NOT NULL
    UNION ALL SELECT id, 2, cap FROM meetings WHERE next_due IS NOT NULL AND cap IS NOT NULL
    UNION ALL SELECT id, 3, fixed FROM meetings WHERE next_due IS NOT NULL AND fixed IS NOT NULL
)
WHERE ?1 IS NULL OR id = ?1
ORDER BY due, kind, id LIMIT ?2
