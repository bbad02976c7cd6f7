-- History chunks, one per instance and unit of work, in the order given.
INSERT INTO history (instance, entries)
SELECT instance, entries FROM UNNEST($1::text[], $2::bytea[]) WITH ORDINALITY AS c(instance, entries, n)
ORDER BY n
