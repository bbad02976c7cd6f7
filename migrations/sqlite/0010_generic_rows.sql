-- Generic rows: the store keeps a meeting as what any machine's instance
-- has — its state's name, how and when it ended, its pending timers as
-- (tie rank, due) in fire order, the eventIDs it applied, its search
-- attributes — and the meeting itself as a document the store never reads
-- (the meeting workflow writes and reads it: `src/meeting/stored.rs`).
-- Existing rows are converted in place: the document is built from the
-- meeting's former columns, in the order the workflow's decoder reads.
-- Instants are microseconds since the Unix epoch (UTC).

DROP VIEW meeting_docs;

CREATE TABLE meetings_v4 (
    id           TEXT PRIMARY KEY NOT NULL,
    state        TEXT NOT NULL,        -- the state's name
    reason       TEXT,                 -- how it ended (NULL: running)
    ended_at     INTEGER,              -- when it ended
    version      INTEGER NOT NULL,     -- fenced: writes check the version they loaded
    prev_version INTEGER NOT NULL,     -- the version the last write was fenced on (-1: created)
    next_due     INTEGER,              -- the first pending timer (fire order), NULL when none
    next_kind    INTEGER,              -- its tie rank
    timers       TEXT NOT NULL,        -- JSON [[rank, due], ...]: the pending timers in fire order
    event_ids    TEXT NOT NULL,        -- JSON array of the eventIDs it applied
    attrs        TEXT NOT NULL,        -- JSON [[name, value], ...]: its search attributes
    doc          TEXT NOT NULL         -- the machine's state (JSON), kept as given
) WITHOUT ROWID;

INSERT INTO meetings_v4
SELECT m.id, m.state, m.reason, m.terminated_at, m.version, m.prev_version, m.next_due, m.next_kind,
       COALESCE((SELECT json_group_array(json_array(t.rank, t.due)) FROM (
           SELECT 0 AS rank, m.safety_net AS due WHERE m.safety_net IS NOT NULL
           UNION ALL SELECT 1, m.recheck WHERE m.recheck IS NOT NULL
           UNION ALL SELECT 2, m.cap WHERE m.cap IS NOT NULL
           UNION ALL SELECT 3, m.fixed WHERE m.fixed IS NOT NULL
           ORDER BY 2, 1) t), '[]'),
       m.event_ids,
       COALESCE((SELECT json_group_array(json(a.pair)) FROM (
           SELECT json_array('instance_id', j.value) AS pair FROM json_each(m.instances) j
           UNION ALL SELECT json_array('start',
                   strftime('%Y-%m-%dT%H:%M:%S', COALESCE(m.meet_time, m.created_at) / 1000000, 'unixepoch')
                   || printf('.%06dZ', COALESCE(m.meet_time, m.created_at) % 1000000))
           WHERE COALESCE(m.meet_time, m.created_at) IS NOT NULL) a), '[]'),
       json_array(m.state, m.reason, m.terminated_at, m.meet_time, m.created_at, m.duration_us, m.status,
                  m.teacher_data, m.student_data, json(m.instances), m.first_seen, m.version,
                  m.safety_net, m.recheck, m.cap, m.fixed)
FROM meetings m;

DROP TABLE meetings;
ALTER TABLE meetings_v4 RENAME TO meetings;

CREATE INDEX meetings_due ON meetings (next_due, next_kind, id) WHERE next_due IS NOT NULL;
CREATE INDEX meetings_ended ON meetings (ended_at, id) WHERE ended_at IS NOT NULL;
CREATE INDEX meetings_remembering ON meetings (ended_at) WHERE ended_at IS NOT NULL AND event_ids <> '[]';

-- Search attributes from the rows: each meeting's instance ids (as 0009
-- indexed them) and now its start, found by range (`list --starts-from`).
DELETE FROM search;
INSERT INTO search (name, value, meeting_id)
SELECT json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]'), m.id FROM meetings m, json_each(m.attrs) j
WHERE true ORDER BY 1, 2, 3
ON CONFLICT DO NOTHING;

-- An instance as one JSON array, in the order the store's decoder reads it:
-- id, version, applied eventIDs, the machine's document.
CREATE VIEW meeting_docs AS
SELECT id, state, reason, next_due, json_array(id, version, json(event_ids), json(doc)) AS doc
FROM meetings;
