-- The durable meeting engine. Instants are microseconds since the Unix epoch (UTC).

-- One row per meeting: its facts and where the state machine has it.
CREATE TABLE meetings (
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
    updated_at    INTEGER NOT NULL,
    version       INTEGER NOT NULL,         -- fenced: writes check the version they loaded
    prev_version  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX meetings_state ON meetings (state, reason);

-- Durable one-shot timers: at most one of each kind per meeting.
CREATE TABLE timers (
    meeting_id TEXT NOT NULL,
    kind       TEXT NOT NULL,               -- safety_net | recheck | cap | fixed
    rank       INTEGER NOT NULL,            -- tie order for equal due times
    due        INTEGER NOT NULL,
    PRIMARY KEY (meeting_id, kind)
) WITHOUT ROWID;
CREATE INDEX timers_due ON timers (due, rank, meeting_id);

-- One row per applied input (and per effect outcome), oldest first.
CREATE TABLE history (
    seq         INTEGER PRIMARY KEY,
    meeting_id  TEXT NOT NULL,
    at          INTEGER NOT NULL,
    cause       TEXT NOT NULL,              -- record | duplicate | timer | command | effect
    cause_ref   TEXT NOT NULL,              -- eventName/eventID, timer kind, command, effect id
    from_state  TEXT,                       -- NULL when the input created the meeting
    to_state    TEXT NOT NULL,
    outcome     TEXT NOT NULL,              -- created | updated | terminated | ignored | …
    reason      TEXT,
    lateness_us INTEGER,                    -- timers: fire instant - due
    details     TEXT NOT NULL               -- JSON array of human-readable notes
);
CREATE INDEX history_meeting ON history (meeting_id, seq);

-- The outbox: effects recorded with their transition, run after commit.
CREATE TABLE effects (
    id              INTEGER PRIMARY KEY,
    key             TEXT NOT NULL UNIQUE,   -- deterministic idempotency key
    meeting_id      TEXT NOT NULL,
    kind            TEXT NOT NULL,          -- terminate | write_back
    payload         TEXT NOT NULL,          -- JSON
    status          TEXT NOT NULL,          -- pending | done | failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    result          TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX effects_pending ON effects (status, next_attempt_at);
CREATE INDEX effects_meeting ON effects (meeting_id);

-- Stream eventIDs already applied (dedupe).
CREATE TABLE seen_events (
    event_id   TEXT PRIMARY KEY NOT NULL,
    meeting_id TEXT NOT NULL,
    at         INTEGER NOT NULL
) WITHOUT ROWID;

-- Input that could not be applied, kept raw with the reason.
CREATE TABLE dead_letters (
    id       INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    origin   TEXT NOT NULL,                 -- file:line, or stream shard/sequence number
    kind     TEXT NOT NULL,
    reason   TEXT NOT NULL,
    event_id TEXT,
    raw      BLOB NOT NULL
);

-- Small engine facts (the last engine instant, …).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) WITHOUT ROWID;
