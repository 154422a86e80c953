-- The message ids of each live stream, kept on its own row (docs/schema.md): a worker that claims a
-- partition reads its live streams with one index range scan of `streams`, instead of probing and sorting
-- stream_events once per stream (most of a failover's restore time at 100k streams, issue #7).
--
-- `message_ids` is only trusted while `message_ids_version` equals the row's `version`: the checkpoint
-- that writes a stream sets both, and any other writer that bumps the version without knowing the column
-- (a pipeline worker, `winchester streams`, a worker of an older release) leaves them unequal, so the
-- reader falls back to stream_events for that row. stream_events stays the authoritative list.

ALTER TABLE streams ADD COLUMN message_ids text[];
ALTER TABLE streams ADD COLUMN message_ids_version integer;

-- Existing live streams get their lists now, so the first claim after the upgrade is fast too. The
-- transition trigger is off meanwhile: this is not a change of the stream (updated_at stays).
ALTER TABLE streams DISABLE TRIGGER streams_transition;
UPDATE streams s
SET message_ids = ARRAY(SELECT e.message_id FROM stream_events e WHERE e.stream_id = s.id ORDER BY e.ord),
  message_ids_version = s.version
WHERE s.state = 'active';
ALTER TABLE streams ENABLE TRIGGER streams_transition;
