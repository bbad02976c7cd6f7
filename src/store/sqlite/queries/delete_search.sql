-- The search attributes of those of the meetings $1 (a JSON array of ids) that are gone.
DELETE FROM search WHERE meeting_id IN (SELECT value FROM json_each($1))
    AND NOT EXISTS (SELECT 1 FROM meetings WHERE meetings.id = search.meeting_id)
