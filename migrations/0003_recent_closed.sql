-- The duplicate window (docs/schema.md): the message ids of each partition's recently closed streams,
-- one row per trigger and key, written by the same checkpoint that closes them. A new owner of the
-- partition loads them with its live streams, so a duplicate arriving after its stream closed (a resend,
-- or the router's redelivery after a crash) is ignored instead of opening a new stream. Rows are deleted
-- once the partition's clock has passed `until`.

CREATE TABLE recent_closed (
  topic       text NOT NULL,
  partition   integer NOT NULL CHECK (partition >= 0),
  trigger     text NOT NULL,
  key         text NOT NULL,
  -- The last stream of the key that closed, and its version then (named when a duplicate is ignored).
  stream_id   text NOT NULL,
  version     integer NOT NULL CHECK (version >= 1),
  -- Engine time (µs since the epoch) until which the ids are remembered.
  until       bigint NOT NULL,
  message_ids text[] NOT NULL,
  PRIMARY KEY (topic, partition, trigger, key)
);

CREATE INDEX recent_closed_by_until ON recent_closed (topic, partition, until);
