-- due_docs_first.sql inside a unit of work: the instances are locked until it
-- ends, and instances another worker holds are skipped (it is firing or changing them).
SELECT m.next_due, m.next_kind, m.id, d.doc::text FROM instances m JOIN instance_docs d ON d.id = m.id
WHERE m.next_due IS NOT NULL AND m.next_due <= $1
ORDER BY m.next_due, m.next_kind, m.id LIMIT $2
FOR UPDATE OF m SKIP LOCKED
