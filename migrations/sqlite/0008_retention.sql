-- Retention: what housekeeping deletes is found through indexes, never by a
-- scan of every meeting; a database that runs for a year stays the size of
-- its retention window.

-- Terminated meetings by when they ended (the oldest are deleted first).
CREATE INDEX meetings_ended ON meetings (terminated_at, id) WHERE terminated_at IS NOT NULL;
-- Ended meetings that still hold their eventIDs (forgotten after `seen_retention`).
CREATE INDEX meetings_remembering ON meetings (terminated_at) WHERE terminated_at IS NOT NULL AND event_ids <> '[]';
-- A meeting's outbox rows (deleted with it; a meeting with an effect not done is kept).
CREATE INDEX outbox_meeting ON outbox (meeting_id);
CREATE INDEX dead_letters_at ON dead_letters (at);
CREATE INDEX stream_gaps_at ON stream_gaps (at);

-- What retention has deleted so far (one row): `show` of a pruned meeting says so.
CREATE TABLE prune_log (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    through  INTEGER NOT NULL,              -- meetings that ended before this may have been deleted
    meetings INTEGER NOT NULL,              -- how many were, in all
    last_at  INTEGER NOT NULL               -- when the last ones were
);

-- The console lists the outbox newest first, by status.
CREATE INDEX outbox_status ON outbox (status, id);
