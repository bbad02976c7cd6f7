-- due_first.sql with each instance's document: a page of fires and the
-- instances they belong to, in one statement and one row (a JSON array of
-- [next_due, next_kind, id, doc]; rows one by one cost more than the reads).
SELECT json_group_array(json_array(next_due, next_kind, id, json(doc))) FROM (
    SELECT m.next_due, m.next_kind, m.id, d.doc FROM instances m JOIN instance_docs d ON d.id = m.id
    WHERE m.next_due IS NOT NULL AND m.next_due <= $1
    ORDER BY m.next_due, m.next_kind, m.id LIMIT $2)
