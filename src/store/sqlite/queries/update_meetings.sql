-- Changed meetings, fenced: a row is written only if it still has the version it
-- was loaded at (element 20 of each row). The caller checks the row count.
UPDATE meetings SET
    state = n.value ->> 1, reason = n.value ->> 2, terminated_at = n.value ->> 3, meet_time = n.value ->> 4,
    created_at = n.value ->> 5, duration_us = n.value ->> 6, status = n.value ->> 7,
    teacher_data = n.value ->> 8, student_data = n.value ->> 9, instances = n.value -> 10,
    version = n.value ->> 12, safety_net = n.value ->> 13, recheck = n.value ->> 14, cap = n.value ->> 15,
    fixed = n.value ->> 16, next_due = n.value ->> 18, next_kind = n.value ->> 19, event_ids = n.value -> 17
FROM json_each(?1) AS n
WHERE meetings.id = n.value ->> 0 AND meetings.version = n.value ->> 20
