-- New and changed instances, one array per column, fenced: an existing row is
-- replaced only if it still has the version this unit of work loaded
-- (prev_version; -1 for an instance it created, which no stored row has). The
-- caller checks that every row was written.
INSERT INTO instances (id, state, reason, ended_at, version, prev_version, next_due, next_kind, timers, event_ids,
                      attrs, doc)
SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[],
                     $8::bigint[], $9::text[], $10::text[], $11::text[], $12::text[])
ON CONFLICT (id) DO UPDATE SET state = excluded.state, reason = excluded.reason, ended_at = excluded.ended_at,
    version = excluded.version, prev_version = excluded.prev_version, next_due = excluded.next_due,
    next_kind = excluded.next_kind, timers = excluded.timers, event_ids = excluded.event_ids,
    attrs = excluded.attrs, doc = excluded.doc
WHERE instances.version = excluded.prev_version
