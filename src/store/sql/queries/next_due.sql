SELECT MIN(next_due) FROM meetings WHERE next_due IS NOT NULL
