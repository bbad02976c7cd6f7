-- Every worker known; live if seen within $1 µs.
SELECT id, host, pid, started_at, last_seen, last_seen >= spindown_now_us() - $1 AS live FROM workers ORDER BY id
