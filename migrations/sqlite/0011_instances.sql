-- The store keeps any machine's instances: the tables say so (`instances`,
-- a column `instance` where rows belong to one), and instances move to a
-- rowid table with a unique index on their id.
--
-- A WITHOUT ROWID table keeps each row inside its primary key's B-tree: with
-- generic rows (the machine's document, timers and search attributes beside
-- the columns: 400-600 bytes a row) a unit of work's rows land on random
-- leaves of a wide tree, and each insert moves a page's worth of neighbours.
-- A rowid table appends new rows at its end; only the narrow id index is
-- written at random places (W1, `replay` of a day: ~6 % faster, measured
-- interleaved; BENCHMARKS.md).

DROP VIEW meeting_docs;

CREATE TABLE instances (
    id           TEXT NOT NULL UNIQUE,
    state        TEXT NOT NULL,        -- the state's name
    reason       TEXT,                 -- how it ended (NULL: running)
    ended_at     INTEGER,              -- when it ended
    version      INTEGER NOT NULL,     -- fenced: writes check the version they loaded
    prev_version INTEGER NOT NULL,     -- the version the last write was fenced on (-1: created)
    next_due     INTEGER,              -- the first pending timer (fire order), NULL when none
    next_kind    INTEGER,              -- its tie rank
    timers       TEXT NOT NULL,        -- JSON [[rank, due], ...]: the pending timers in fire order
    event_ids    TEXT NOT NULL,        -- JSON array of the dedupe keys it applied
    attrs        TEXT NOT NULL,        -- JSON [[name, value], ...]: its search attributes
    doc          TEXT NOT NULL         -- the machine's state (JSON), kept as given
);

INSERT INTO instances (id, state, reason, ended_at, version, prev_version, next_due, next_kind, timers, event_ids,
                       attrs, doc)
SELECT id, state, reason, ended_at, version, prev_version, next_due, next_kind, timers, event_ids, attrs, doc
FROM meetings ORDER BY id;

DROP TABLE meetings;

CREATE INDEX instances_due ON instances (next_due, next_kind, id) WHERE next_due IS NOT NULL;
CREATE INDEX instances_ended ON instances (ended_at, id) WHERE ended_at IS NOT NULL;
CREATE INDEX instances_remembering ON instances (ended_at) WHERE ended_at IS NOT NULL AND event_ids <> '[]';

CREATE VIEW instance_docs AS
SELECT id, state, reason, next_due, json_array(id, version, json(event_ids), json(doc)) AS doc
FROM instances;

-- Rows that belong to one instance name it `instance`.
DROP INDEX history_meeting;
ALTER TABLE history RENAME COLUMN meeting_id TO instance;
CREATE INDEX history_instance ON history (instance, seq);

DROP INDEX outbox_meeting;
ALTER TABLE outbox RENAME COLUMN meeting_id TO instance;
CREATE INDEX outbox_instance ON outbox (instance);

DROP INDEX search_meeting;
ALTER TABLE search RENAME COLUMN meeting_id TO instance;
CREATE INDEX search_instance ON search (instance);
ALTER TABLE prune_log RENAME COLUMN meetings TO instances;
