-- A page of instances in id order (?1 state, ?2 reason, ?3 after this id, ?4 limit), as one JSON document.
SELECT json_group_array(json(doc) ORDER BY id) FROM (
    SELECT id, doc FROM instance_docs
    WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR reason = ?2) AND id > COALESCE(?3, '')
    ORDER BY id LIMIT ?4
)
