-- spindown on PostgreSQL: the lean schema of the SQLite backend (see
-- ../sqlite/0005_lean.sql), for several workers on one database.
-- Instants are microseconds since the Unix epoch (UTC). Ids compare byte by
-- byte (COLLATE "C"), as in SQLite and in Rust, whatever the database's
-- locale: pages and `replay --json` come out in the same order everywhere.

-- One row per meeting: its facts, its pending timers and the eventIDs it applied.
CREATE TABLE meetings (
    id            TEXT COLLATE "C" PRIMARY KEY,
    state         TEXT NOT NULL,
    reason        TEXT,
    terminated_at BIGINT,
    meet_time     BIGINT,
    created_at    BIGINT,
    duration_us   BIGINT,
    status        TEXT,
    teacher_data  BOOLEAN NOT NULL,
    student_data  BOOLEAN NOT NULL,
    instances     TEXT NOT NULL,            -- JSON array of valid instance ids, sorted
    first_seen    BIGINT NOT NULL,
    version       BIGINT NOT NULL,          -- fenced: writes check the version they loaded
    safety_net    BIGINT,                   -- pending timers' due instants (NULL: not pending)
    recheck       BIGINT,
    cap           BIGINT,
    fixed         BIGINT,
    next_due      BIGINT,                   -- the first pending timer (fire order), NULL when none
    next_kind     BIGINT,                   -- its tie rank: 0 safety_net, 1 recheck, 2 cap, 3 fixed
    event_ids     TEXT NOT NULL,            -- JSON array of the eventIDs this meeting applied
    prev_version  BIGINT NOT NULL           -- the version the last write was fenced on (-1: created)
);
-- Due timers in fire order, live meetings only (a terminated meeting leaves the index).
CREATE INDEX meetings_due ON meetings (next_due, next_kind, id) WHERE next_due IS NOT NULL;

-- A meeting as one JSON array, in the order the store's decoder reads it (the
-- same document as SQLite's `meeting_docs`).
CREATE VIEW meeting_docs AS
SELECT id, state, reason, next_due,
       json_build_array(id, state, reason, terminated_at, meet_time, created_at, duration_us, status,
                        teacher_data::int, student_data::int, instances::json, first_seen, version,
                        safety_net, recheck, cap, fixed, event_ids::json) AS doc
FROM meetings;

-- A meeting's story: each unit of work appends one chunk of entries per meeting it touched.
CREATE TABLE history (
    seq        BIGSERIAL PRIMARY KEY,
    meeting_id TEXT COLLATE "C" NOT NULL,
    entries    BYTEA NOT NULL               -- spindown's compact encoding of a list of entries
);
CREATE INDEX history_meeting ON history (meeting_id, seq);

-- The outbox: one row per termination, its effects run in order.
CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    key             TEXT COLLATE "C" NOT NULL UNIQUE,   -- deterministic idempotency key: "<meeting id>/end"
    meeting_id      TEXT COLLATE "C" NOT NULL,
    parts           TEXT NOT NULL,          -- JSON array of the effects, in order
    done            BIGINT NOT NULL,        -- how many parts are done
    status          TEXT NOT NULL,          -- pending | done | failed
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    lease_owner     TEXT,                   -- the executor running it, until lease_until
    lease_until     BIGINT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX outbox_meeting ON outbox (meeting_id);

-- Input that could not be applied, kept raw with the reason.
CREATE TABLE dead_letters (
    id       BIGSERIAL PRIMARY KEY,
    at       BIGINT NOT NULL,
    origin   TEXT NOT NULL,                 -- file:line, or stream shard/sequence number
    kind     TEXT NOT NULL,
    reason   TEXT NOT NULL,
    event_id TEXT,
    raw      BYTEA NOT NULL
);

-- The engine's clocks; they only ever grow.
CREATE TABLE clocks (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    last_instant BIGINT,
    event_clock  BIGINT
);

-- The DynamoDB Streams reader's positions, one row per shard, written in the
-- same transaction as the records they cover.
CREATE TABLE checkpoints (
    stream_arn      TEXT COLLATE "C" NOT NULL,
    shard_id        TEXT COLLATE "C" NOT NULL,
    parent_shard_id TEXT,
    sequence_number TEXT,                   -- the last record applied (NULL: none yet)
    closed          BOOLEAN NOT NULL DEFAULT FALSE, -- read to its end
    records         BIGINT NOT NULL DEFAULT 0,
    last_event_at   BIGINT,                 -- ApproximateCreationDateTime of the last record
    caught_up       BOOLEAN NOT NULL DEFAULT FALSE, -- the last poll found nothing new
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (stream_arn, shard_id)
);

-- Records lost to the stream's 24-hour retention before they were read.
CREATE TABLE stream_gaps (
    id         BIGSERIAL PRIMARY KEY,
    stream_arn TEXT NOT NULL,
    shard_id   TEXT NOT NULL,
    at         BIGINT NOT NULL,
    detail     TEXT NOT NULL
);
