INSERT INTO sweep_log (at, instance_id, meeting_id, launched_at, action, detail) VALUES ($1, $2, $3, $4, $5, $6)
