-- A worker is alive (?1 id, ?2 host, ?3 pid, ?4 started at), by the database's clock.
INSERT INTO workers (id, host, pid, started_at, last_seen) VALUES (?1, ?2, ?3, ?4, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, started_at = excluded.started_at,
    last_seen = excluded.last_seen
