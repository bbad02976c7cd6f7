-- The done outbox rows of the instances $1.
DELETE FROM outbox WHERE instance = ANY($1::text[]) AND status = 'done'
