-- Partition checkpoints (offset + engine sequence, fenced by an owner epoch), the outbox of fire
-- and expire batches, and the batches pipelines have completed. See docs/schema.md.

CREATE TABLE partition_checkpoints (
  topic      text NOT NULL,
  partition  integer NOT NULL CHECK (partition >= 0),
  -- The next offset to consume; NULL until the first checkpoint.
  "offset"   bigint CHECK ("offset" >= 0),
  -- Bumped by every claim: a checkpoint names its epoch and fails once another worker claimed.
  epoch      bigint NOT NULL CHECK (epoch >= 1),
  -- The engine's next stream sequence number (stream ids are never reused).
  next_seq   bigint NOT NULL DEFAULT 1 CHECK (next_seq >= 1),
  claimed_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (topic, partition)
);

CREATE TABLE outbox (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  batch_id     text NOT NULL UNIQUE,
  stream_id    text NOT NULL,
  kind         text NOT NULL CHECK (kind IN ('fire', 'expire')),
  -- The Kafka record exactly as it will be produced: key and value text (the value keeps
  -- float literals such as 1.0 that a jsonb round trip through JSON.parse would lose).
  message_key  text,
  payload      text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  published_at timestamptz
);

CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

CREATE TABLE completed_batches (
  batch_id     text PRIMARY KEY,
  stream_id    text NOT NULL,
  completed_at timestamptz NOT NULL DEFAULT now()
);
