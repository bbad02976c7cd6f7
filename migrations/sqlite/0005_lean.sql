-- Lean writes: one meeting row holds its pending timers and the eventIDs it
-- applied; a unit of work appends one history chunk per meeting it touched;
-- one outbox row holds a termination's effects. Existing data is converted.
-- Instants are microseconds since the Unix epoch (UTC).

-- Meetings, with their timers (formerly `timers`) and applied eventIDs (formerly `seen_events`).
CREATE TABLE meetings_v3 (
    id            TEXT PRIMARY KEY NOT NULL,
    state         TEXT NOT NULL,
    reason        TEXT,
    terminated_at INTEGER,
    meet_time     INTEGER,
    created_at    INTEGER,
    duration_us   INTEGER,
    status        TEXT,
    teacher_data  INTEGER NOT NULL,
    student_data  INTEGER NOT NULL,
    instances     TEXT NOT NULL,            -- JSON array of valid instance ids, sorted
    first_seen    INTEGER NOT NULL,
    version       INTEGER NOT NULL,         -- fenced: writes check the version they loaded
    safety_net    INTEGER,                  -- pending timers' due instants (NULL: not pending)
    recheck       INTEGER,
    cap           INTEGER,
    fixed         INTEGER,
    next_due      INTEGER,                  -- the first pending timer (fire order), NULL when none
    next_kind     INTEGER,                  -- its tie rank: 0 safety_net, 1 recheck, 2 cap, 3 fixed
    event_ids     TEXT NOT NULL,            -- JSON array of the eventIDs this meeting applied
    prev_version  INTEGER NOT NULL          -- the version the last write was fenced on (-1: created)
) WITHOUT ROWID;

INSERT INTO meetings_v3
SELECT m.id, m.state, m.reason, m.terminated_at, m.meet_time, m.created_at, m.duration_us, m.status,
       m.teacher_data, m.student_data, m.instances, m.first_seen, m.version,
       (SELECT due FROM timers t WHERE t.meeting_id = m.id AND t.kind = 'safety_net'),
       (SELECT due FROM timers t WHERE t.meeting_id = m.id AND t.kind = 'recheck'),
       (SELECT due FROM timers t WHERE t.meeting_id = m.id AND t.kind = 'cap'),
       (SELECT due FROM timers t WHERE t.meeting_id = m.id AND t.kind = 'fixed'),
       (SELECT due FROM timers t WHERE t.meeting_id = m.id ORDER BY due, rank LIMIT 1),
       (SELECT rank FROM timers t WHERE t.meeting_id = m.id ORDER BY due, rank LIMIT 1),
       COALESCE((SELECT json_group_array(event_id) FROM seen_events s WHERE s.meeting_id = m.id), '[]'),
       m.prev_version
FROM meetings m;

DROP TABLE timers;
DROP TABLE seen_events;
DROP TABLE meetings;
ALTER TABLE meetings_v3 RENAME TO meetings;
-- Due timers in fire order, live meetings only (a terminated meeting leaves the index).
CREATE INDEX meetings_due ON meetings (next_due, next_kind, id) WHERE next_due IS NOT NULL;

-- A meeting's story: each unit of work appends one chunk of entries per
-- meeting it touched. `entries` is a compact binary list (spindown's own
-- encoding, first byte 1) or, for history converted from an older
-- database, a JSON array.
CREATE TABLE history_v3 (
    seq        INTEGER PRIMARY KEY,
    meeting_id TEXT NOT NULL,
    entries    BLOB NOT NULL
);

INSERT INTO history_v3 (seq, meeting_id, entries)
SELECT h.seq, h.meeting_id, json_array(json_object(
    'at', h.at,
    'cause', CASE h.cause
        WHEN 'record' THEN json_object('Record', json_object(
            'event', substr(h.cause_ref, 1, instr(h.cause_ref, ' ') - 1),
            'event_id', CASE substr(h.cause_ref, instr(h.cause_ref, ' ') + 1)
                WHEN '(no eventID)' THEN NULL ELSE substr(h.cause_ref, instr(h.cause_ref, ' ') + 1) END))
        WHEN 'duplicate' THEN json_object('Duplicate', json_object(
            'event', substr(h.cause_ref, 1, instr(h.cause_ref, ' ') - 1),
            'event_id', substr(h.cause_ref, instr(h.cause_ref, ' ') + 1)))
        WHEN 'timer' THEN json_object('Timer', json_object(
            'kind', substr(h.cause_ref, 1, instr(h.cause_ref, ' ') - 1),
            'due', substr(h.cause_ref, instr(h.cause_ref, ' due ') + 5)))
        WHEN 'command' THEN json_object('Command', h.cause_ref)
        ELSE json_object('Effect', json_object(
            'kind', substr(h.cause_ref, 1, instr(h.cause_ref, ' ') - 1),
            'effect', CAST(substr(h.cause_ref, instr(h.cause_ref, '#') + 1) AS INTEGER)))
    END,
    'from', CASE WHEN h.cause = 'effect' THEN NULL ELSE h.from_state END,
    'to', CASE WHEN h.cause = 'effect' THEN NULL ELSE h.to_state END,
    'outcome', h.outcome,
    'reason', h.reason,
    'lateness', h.lateness_us,
    'notes', (SELECT json_group_array(json_object('Text', n.value) ORDER BY n.key) FROM json_each(h.details) n)
))
FROM history h;

DROP TABLE history;
ALTER TABLE history_v3 RENAME TO history;
CREATE INDEX history_meeting ON history (meeting_id, seq);

-- The outbox: one row per termination, its effects run in order.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    key             TEXT NOT NULL UNIQUE,   -- deterministic idempotency key: "<meeting id>/end"
    meeting_id      TEXT NOT NULL,
    parts           TEXT NOT NULL,          -- JSON array of the effects, in order
    done            INTEGER NOT NULL,       -- how many parts are done
    status          TEXT NOT NULL,          -- pending | done | failed
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    lease_owner     TEXT,                   -- the executor running it, until lease_until
    lease_until     INTEGER
);
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE status = 'pending';

-- Each meeting's old effects (at most a terminate and a write-back) become one row.
INSERT INTO outbox (key, meeting_id, parts, done, status, attempts, next_attempt_at, last_error, created_at, updated_at)
SELECT e.meeting_id || '/end',
       e.meeting_id,
       json_group_array(CASE e.kind
           WHEN 'terminate' THEN json_object('Terminate', json(e.payload))
           ELSE json_object('WriteBack', json(e.payload)) END ORDER BY e.id),
       CASE
           WHEN SUM(e.status <> 'done') = 0 THEN COUNT(*)
           WHEN MIN(CASE WHEN e.status <> 'done' THEN e.id END) = MIN(e.id) THEN 0
           ELSE 1 END,
       CASE WHEN SUM(e.status = 'failed') > 0 THEN 'failed'
            WHEN SUM(e.status = 'pending') > 0 THEN 'pending'
            ELSE 'done' END,
       MAX(e.attempts),
       MIN(e.next_attempt_at),
       MAX(e.last_error),
       MIN(e.created_at),
       MAX(e.updated_at)
FROM effects e
GROUP BY e.meeting_id;

DROP TABLE effects;

-- The engine's clocks (formerly rows of `meta`); they only ever grow.
CREATE TABLE clocks (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    last_instant INTEGER,
    event_clock  INTEGER
);
INSERT INTO clocks (id, last_instant, event_clock) VALUES (1,
    (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'last_instant'),
    (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'event_clock'));
DROP TABLE meta;

-- A meeting as one JSON array, in the order the store's decoder reads it
-- (the one definition of a meeting row; every query that returns meetings uses it).
CREATE VIEW meeting_docs AS
SELECT id, state, reason, next_due,
       json_array(id, state, reason, terminated_at, meet_time, created_at, duration_us, status,
                  teacher_data, student_data, json(instances), first_seen, version,
                  safety_net, recheck, cap, fixed, json(event_ids)) AS doc
FROM meetings;
