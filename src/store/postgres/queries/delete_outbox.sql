-- The done outbox rows of the meetings $1.
DELETE FROM outbox WHERE meeting_id = ANY($1::text[]) AND status = 'done'
