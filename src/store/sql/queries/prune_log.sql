-- What retention has deleted so far.
SELECT through, instances, last_at FROM prune_log WHERE id = 1
