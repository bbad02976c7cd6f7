-- History chunks, one per meeting and unit of work, in the order given.
INSERT INTO history (meeting_id, entries)
SELECT meeting_id, entries FROM UNNEST($1::text[], $2::bytea[]) WITH ORDINALITY AS c(meeting_id, entries, n)
ORDER BY n
