-- The engine's clocks only grow (?1 last instant, ?2 event clock; NULL keeps the stored value).
INSERT INTO clocks (id, last_instant, event_clock) VALUES (1, ?1, ?2)
ON CONFLICT (id) DO UPDATE SET
    last_instant = MAX(COALESCE(last_instant, excluded.last_instant), COALESCE(excluded.last_instant, last_instant)),
    event_clock = MAX(COALESCE(event_clock, excluded.event_clock), COALESCE(excluded.event_clock, event_clock))
