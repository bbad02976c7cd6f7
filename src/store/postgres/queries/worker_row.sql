-- One worker's registration ($1 id); live if seen within $2 µs.
SELECT id, host, pid, started_at, last_seen, last_seen >= spindown_now_us() - $2 AS live FROM workers WHERE id = $1
