-- Everything `status` counts, as one JSON document.
SELECT json_build_object(
    'instances', (SELECT COUNT(*) FROM instances),
    'by_state', (SELECT COALESCE(json_agg(json_build_array(state, n) ORDER BY state), '[]') FROM
                 (SELECT state, COUNT(*) AS n FROM instances GROUP BY state) s),
    'by_reason', (SELECT COALESCE(json_agg(json_build_array(reason, n) ORDER BY reason), '[]') FROM
                  (SELECT reason, COUNT(*) AS n FROM instances WHERE reason IS NOT NULL GROUP BY reason) r),
    'timers', (SELECT COUNT(*) FROM instances m, jsonb_array_elements(m.timers::jsonb) j
               WHERE m.next_due IS NOT NULL),
    'timers_by_kind', (SELECT COALESCE(json_agg(json_build_array(kind, n) ORDER BY kind), '[]') FROM
                       (SELECT (j->>0)::bigint AS kind, COUNT(*) AS n
                        FROM instances m, jsonb_array_elements(m.timers::jsonb) j WHERE m.next_due IS NOT NULL
                        GROUP BY 1) t),
    'next_due', (SELECT MIN(next_due) FROM instances WHERE next_due IS NOT NULL),
    'effects', (SELECT COALESCE(json_agg(json_build_array(status, n) ORDER BY status), '[]') FROM
                (SELECT status, COUNT(*) AS n FROM outbox GROUP BY status) e),
    'dead', (SELECT COALESCE(json_agg(json_build_array(kind, n) ORDER BY kind), '[]') FROM
             (SELECT kind, COUNT(*) AS n FROM dead_letters GROUP BY kind) d)
)::text
