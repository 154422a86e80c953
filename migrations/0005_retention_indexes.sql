-- Retention (docs/schema.md, "Retention"): workers and `winchester db prune` delete completion marks and
-- published outbox rows older than their retention, oldest first, a small batch at a time. These indexes
-- let each batch find its rows by a range scan on the time column instead of scanning the whole table.
-- Built inside the migration's transaction (not CONCURRENTLY): on a large existing table, writes to it
-- wait while the index builds; run `winchester db upgrade` before the workers start.

CREATE INDEX completed_batches_by_time ON completed_batches (completed_at);
-- Only published rows are ever pruned; unpublished ones are found by outbox_unpublished.
CREATE INDEX outbox_published_by_time ON outbox (published_at) WHERE published_at IS NOT NULL;
