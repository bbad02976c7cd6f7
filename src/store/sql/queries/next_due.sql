SELECT MIN(next_due) FROM instances WHERE next_due IS NOT NULL
