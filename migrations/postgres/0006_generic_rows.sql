-- Generic rows: the store keeps a meeting as what any machine's instance
-- has — its state's name, how and when it ended, its pending timers as
-- (tie rank, due) in fire order, the eventIDs it applied, its search
-- attributes — and the meeting itself as a document the store never reads
-- (see ../sqlite/0010_generic_rows.sql; the same columns and document).
-- Existing rows are converted in place.

DROP VIEW meeting_docs;

ALTER TABLE meetings RENAME COLUMN terminated_at TO ended_at;
ALTER TABLE meetings
    ADD COLUMN timers TEXT,
    ADD COLUMN attrs  TEXT,
    ADD COLUMN doc    TEXT;

UPDATE meetings m SET
    timers = COALESCE((SELECT json_agg(json_build_array(t.rank, t.due) ORDER BY t.due, t.rank)
                       FROM (VALUES (0, m.safety_net), (1, m.recheck), (2, m.cap), (3, m.fixed)) AS t(rank, due)
                       WHERE t.due IS NOT NULL)::text, '[]'),
    attrs = COALESCE((SELECT json_agg(a.pair ORDER BY a.n) FROM (
                          SELECT json_build_array('instance_id', j.value) AS pair, j.n
                          FROM json_array_elements_text(m.instances::json) WITH ORDINALITY AS j(value, n)
                          UNION ALL
                          SELECT json_build_array('start',
                                     to_char(to_timestamp(s.at / 1000000) AT TIME ZONE 'UTC',
                                             'YYYY-MM-DD"T"HH24:MI:SS')
                                     || '.' || lpad((s.at % 1000000)::text, 6, '0') || 'Z'),
                                 1000000000
                          FROM (SELECT COALESCE(m.meet_time, m.created_at) AS at) s
                          WHERE s.at IS NOT NULL) a)::text, '[]'),
    doc = json_build_array(m.state, m.reason, m.ended_at, m.meet_time, m.created_at, m.duration_us, m.status,
                           m.teacher_data::int, m.student_data::int, m.instances::json, m.first_seen, m.version,
                           m.safety_net, m.recheck, m.cap, m.fixed)::text;

ALTER TABLE meetings
    ALTER COLUMN timers SET NOT NULL,
    ALTER COLUMN attrs SET NOT NULL,
    ALTER COLUMN doc SET NOT NULL,
    DROP COLUMN meet_time,
    DROP COLUMN created_at,
    DROP COLUMN duration_us,
    DROP COLUMN status,
    DROP COLUMN teacher_data,
    DROP COLUMN student_data,
    DROP COLUMN instances,
    DROP COLUMN first_seen,
    DROP COLUMN safety_net,
    DROP COLUMN recheck,
    DROP COLUMN cap,
    DROP COLUMN fixed;

-- (meetings_due, meetings_ended and meetings_remembering follow the renamed column.)

-- Search attributes from the rows: each meeting's instance ids (as 0005
-- indexed them) and now its start, found by range (`list --starts-from`).
DELETE FROM search;
INSERT INTO search (name, value, meeting_id)
SELECT j->>0, j->>1, m.id FROM meetings m, json_array_elements(m.attrs::json) j
ON CONFLICT DO NOTHING;

-- An instance as one JSON array, in the order the store's decoder reads it:
-- id, version, applied eventIDs, the machine's document.
CREATE VIEW meeting_docs AS
SELECT id, state, reason, next_due, json_build_array(id, version, event_ids::json, doc::json) AS doc
FROM meetings;
