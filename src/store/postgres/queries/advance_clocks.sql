-- The engine's clocks only grow ($1 last instant, $2 event clock; NULL keeps the stored value).
INSERT INTO clocks (id, last_instant, event_clock) VALUES (1, $1, $2)
ON CONFLICT (id) DO UPDATE SET
    last_instant = GREATEST(clocks.last_instant, excluded.last_instant),
    event_clock = GREATEST(clocks.event_clock, excluded.event_clock)
