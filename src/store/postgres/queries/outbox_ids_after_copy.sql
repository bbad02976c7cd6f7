-- After rows were copied with their ids: new rows are numbered after them.
SELECT setval(pg_get_serial_sequence('outbox', 'id'), GREATEST((SELECT MAX(id) FROM outbox), 1))
