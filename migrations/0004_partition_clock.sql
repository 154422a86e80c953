-- The engine's time at each partition checkpoint (µs since the epoch; NULL before any time passed).
-- A new owner of the partition resumes from it, so with clock.mode: event its clock never starts
-- behind where the previous owner's stood (records re-routed after a router crash carry older
-- watermarks). See docs/schema.md.

ALTER TABLE partition_checkpoints ADD COLUMN clock bigint;
