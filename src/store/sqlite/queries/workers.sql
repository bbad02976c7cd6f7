-- Every worker known; live if seen within ?1 µs.
SELECT id, host, pid, started_at, last_seen, last_seen >= CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER) - ?1 AS live FROM workers ORDER BY id
