-- Everything `status` counts, as one JSON document.
SELECT json_object(
    'instances', (SELECT COUNT(*) FROM instances),
    'by_state', (SELECT json_group_array(json_array(state, n)) FROM
                 (SELECT state, COUNT(*) AS n FROM instances GROUP BY state ORDER BY state)),
    'by_reason', (SELECT json_group_array(json_array(reason, n)) FROM
                  (SELECT reason, COUNT(*) AS n FROM instances WHERE reason IS NOT NULL GROUP BY reason ORDER BY reason)),
    'timers', (SELECT COUNT(*) FROM instances m, json_each(m.timers) WHERE m.next_due IS NOT NULL),
    'timers_by_kind', (SELECT json_group_array(json_array(kind, n)) FROM
                       (SELECT json_extract(j.value, '$[0]') AS kind, COUNT(*) AS n
                        FROM instances m, json_each(m.timers) j WHERE m.next_due IS NOT NULL
                        GROUP BY kind ORDER BY kind)),
    'next_due', (SELECT MIN(next_due) FROM instances WHERE next_due IS NOT NULL),
    'effects', (SELECT json_group_array(json_array(status, n)) FROM
                (SELECT status, COUNT(*) AS n FROM outbox GROUP BY status ORDER BY status)),
    'dead', (SELECT json_group_array(json_array(kind, n)) FROM
             (SELECT kind, COUNT(*) AS n FROM dead_letters GROUP BY kind ORDER BY kind))
)
