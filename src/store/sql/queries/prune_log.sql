-- What retention has deleted so far.
SELECT through, meetings, last_at FROM prune_log WHERE id = 1
