-- Search attributes: values a meeting is found by, indexed (the console's
-- instance-id search is a lookup, not a scan of every meeting). One row per
-- (attribute, value, meeting); written with the meeting, deleted with it.
CREATE TABLE search (
    name       TEXT NOT NULL,   -- the attribute: 'instance_id'
    value      TEXT NOT NULL,
    meeting_id TEXT NOT NULL,
    PRIMARY KEY (name, value, meeting_id)
);
CREATE INDEX search_meeting ON search (meeting_id);

-- The meetings already stored, in place.
INSERT INTO search (name, value, meeting_id)
SELECT 'instance_id', j, m.id FROM meetings m, json_array_elements_text(m.instances::json) j
ON CONFLICT DO NOTHING;
