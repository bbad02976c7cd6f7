-- due_after.sql with each instance's document: a page of fires and the
-- instances they belong to, in one statement (committed state, no locks).
SELECT m.next_due, m.next_kind, m.id, d.doc::text FROM instances m JOIN instance_docs d ON d.id = m.id
WHERE m.next_due IS NOT NULL AND (m.next_due, m.next_kind, m.id) > ($1, $2, $3) AND m.next_due <= $4
ORDER BY m.next_due, m.next_kind, m.id LIMIT $5
