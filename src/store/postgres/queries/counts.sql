-- Everything `status` counts, as one JSON document.
SELECT json_build_object(
    'meetings', (SELECT COUNT(*) FROM meetings),
    'by_state', (SELECT COALESCE(json_agg(json_build_array(state, n) ORDER BY state), '[]') FROM
                 (SELECT state, COUNT(*) AS n FROM meetings GROUP BY state) s),
    'by_reason', (SELECT COALESCE(json_agg(json_build_array(reason, n) ORDER BY reason), '[]') FROM
                  (SELECT reason, COUNT(*) AS n FROM meetings WHERE reason IS NOT NULL GROUP BY reason) r),
    'timers', (SELECT COALESCE(SUM((safety_net IS NOT NULL)::int + (recheck IS NOT NULL)::int
                                   + (cap IS NOT NULL)::int + (fixed IS NOT NULL)::int), 0)
               FROM meetings WHERE next_due IS NOT NULL),
    'timers_by_kind', (SELECT json_build_array(COALESCE(SUM((safety_net IS NOT NULL)::int), 0),
                                               COALESCE(SUM((recheck IS NOT NULL)::int), 0),
                                               COALESCE(SUM((cap IS NOT NULL)::int), 0),
                                               COALESCE(SUM((fixed IS NOT NULL)::int), 0))
                       FROM meetings WHERE next_due IS NOT NULL),
    'next_due', (SELECT MIN(next_due) FROM meetings WHERE next_due IS NOT NULL),
    'effects', (SELECT COALESCE(json_agg(json_build_array(status, n) ORDER BY status), '[]') FROM
                (SELECT status, COUNT(*) AS n FROM outbox GROUP BY status) e),
    'dead', (SELECT COALESCE(json_agg(json_build_array(kind, n) ORDER BY kind), '[]') FROM
             (SELECT kind, COUNT(*) AS n FROM dead_letters GROUP BY kind) d)
)::text
