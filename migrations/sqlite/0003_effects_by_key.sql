-- A meeting's effects are found by their key, "<meeting id>/<kind>": the
-- separate index on meeting_id cost one more random index write per effect.
DROP INDEX IF EXISTS effects_meeting;
