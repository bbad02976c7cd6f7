-- Every stored meeting's instance ids, indexed in one sorted pass (after a bulk
-- load whose units of work left them out); those indexed already are kept.
INSERT INTO search (name, value, meeting_id)
SELECT 'instance_id', j, m.id FROM meetings m, json_array_elements_text(m.instances::json) j ORDER BY 2, 3
ON CONFLICT DO NOTHING
