-- One worker's registration (?1 id); live if seen within ?2 µs.
SELECT id, host, pid, started_at, last_seen, last_seen >= CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER) - ?2 AS live FROM workers WHERE id = ?1
