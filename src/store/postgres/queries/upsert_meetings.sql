-- New and changed meetings, one array per column, fenced: an existing row is
-- replaced only if it still has the version this unit of work loaded
-- (prev_version; -1 for a meeting it created, which no stored row has). The
-- caller checks that every row was written.
INSERT INTO meetings (id, state, reason, terminated_at, meet_time, created_at, duration_us, status,
                      teacher_data, student_data, instances, first_seen, version, safety_net, recheck, cap,
                      fixed, next_due, next_kind, event_ids, prev_version)
SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[],
                     $8::text[], $9::boolean[], $10::boolean[], $11::text[], $12::bigint[], $13::bigint[],
                     $14::bigint[], $15::bigint[], $16::bigint[], $17::bigint[], $18::bigint[], $19::bigint[],
                     $20::text[], $21::bigint[])
ON CONFLICT (id) DO UPDATE SET state = excluded.state, reason = excluded.reason,
    terminated_at = excluded.terminated_at, meet_time = excluded.meet_time, created_at = excluded.created_at,
    duration_us = excluded.duration_us, status = excluded.status, teacher_data = excluded.teacher_data,
    student_data = excluded.student_data, instances = excluded.instances, version = excluded.version,
    safety_net = excluded.safety_net, recheck = excluded.recheck, cap = excluded.cap, fixed = excluded.fixed,
    next_due = excluded.next_due, next_kind = excluded.next_kind, event_ids = excluded.event_ids,
    prev_version = excluded.prev_version
WHERE meetings.version = excluded.prev_version
