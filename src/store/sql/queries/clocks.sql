SELECT last_instant, event_clock FROM clocks WHERE id = 1
