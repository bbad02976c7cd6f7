SELECT at, instance_id, meeting_id, launched_at, action, detail FROM sweep_log ORDER BY id DESC LIMIT $1
