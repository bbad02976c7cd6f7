-- The console's overview at ?1 (now), as one JSON document: live instances by
-- state (partial index instances_live: live rows only), instances ended in
-- total, since ?2 (an hour ago) and since ?3 (a day ago) by end (index
-- instances_ended), outbox rows failed and retrying with the oldest of each
-- (index outbox_status), dead letters since ?3 (index dead_letters_at), the
-- oldest overdue timer (index instances_due). No figure scans the table.
SELECT json_object(
    'live', (SELECT json_group_array(json_array(state, n)) FROM
             (SELECT state, COUNT(*) AS n FROM instances INDEXED BY instances_live
              WHERE ended_at IS NULL GROUP BY state ORDER BY state)),
    'ended', (SELECT COUNT(*) FROM instances WHERE ended_at IS NOT NULL),
    'hour', (SELECT json_group_array(json_array(reason, n)) FROM
             (SELECT reason, COUNT(*) AS n FROM instances WHERE ended_at >= ?2 GROUP BY reason ORDER BY reason)),
    'day', (SELECT json_group_array(json_array(reason, n)) FROM
            (SELECT reason, COUNT(*) AS n FROM instances WHERE ended_at >= ?3 GROUP BY reason ORDER BY reason)),
    'failed', (SELECT COUNT(*) FROM outbox WHERE status = 'failed'),
    'failed_oldest', json((SELECT json_array(id, instance, last_error, updated_at) FROM outbox
                           WHERE status = 'failed' ORDER BY status, id LIMIT 1)),
    'retrying', (SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND attempts > 0),
    'retrying_oldest', json((SELECT json_array(id, instance, last_error, updated_at) FROM outbox
                             WHERE status = 'pending' AND attempts > 0 ORDER BY status, id LIMIT 1)),
    'dead_day', (SELECT COUNT(*) FROM dead_letters WHERE at >= ?3),
    'overdue', (SELECT MIN(next_due) FROM instances WHERE next_due IS NOT NULL AND next_due <= ?1)
)
