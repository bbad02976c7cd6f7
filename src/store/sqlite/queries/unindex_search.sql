-- Every search attribute of the instances $1 (a JSON array of ids): re-indexed next.
DELETE FROM search WHERE instance IN (SELECT value FROM json_each($1))
