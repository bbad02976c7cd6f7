-- Every search attribute of the instances $1: re-indexed next.
DELETE FROM search WHERE instance = ANY($1::text[])
