-- New meetings, from a JSON array of rows in the order of `meeting_docs`.
INSERT INTO meetings (id, state, reason, terminated_at, meet_time, created_at, duration_us, status,
                      teacher_data, student_data, instances, first_seen, version,
                      safety_net, recheck, cap, fixed, next_due, next_kind, event_ids)
SELECT r.value ->> 0, r.value ->> 1, r.value ->> 2, r.value ->> 3, r.value ->> 4, r.value ->> 5, r.value ->> 6,
       r.value ->> 7, r.value ->> 8, r.value ->> 9, r.value -> 10, r.value ->> 11, r.value ->> 12,
       r.value ->> 13, r.value ->> 14, r.value ->> 15, r.value ->> 16, r.value ->> 18, r.value ->> 19,
       r.value -> 17
FROM json_each(?1) AS r
