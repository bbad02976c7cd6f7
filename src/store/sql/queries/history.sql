-- A meeting's history chunks, oldest first.
SELECT seq, entries FROM history WHERE meeting_id = $1 ORDER BY seq
