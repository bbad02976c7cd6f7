-- The console's overview counts live instances by state from an index of
-- live rows only (a few thousand at a time, whatever the table holds), not
-- from a scan of every instance that ever ran.
CREATE INDEX instances_live ON instances (state) WHERE ended_at IS NULL;
