-- Meetings that ended before $1 no longer need their eventIDs (the stream cannot deliver them again).
UPDATE instances SET event_ids = '[]' WHERE ended_at < $1 AND event_ids <> '[]'
