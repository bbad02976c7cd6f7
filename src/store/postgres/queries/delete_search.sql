-- The search attributes of those of the meetings $1 that are gone.
DELETE FROM search WHERE meeting_id = ANY($1::text[])
    AND NOT EXISTS (SELECT 1 FROM meetings WHERE meetings.id = search.meeting_id)
