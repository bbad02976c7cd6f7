-- An instance's history chunks, oldest first.
SELECT seq, entries FROM history WHERE instance = $1 ORDER BY seq
