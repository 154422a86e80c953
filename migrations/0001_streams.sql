-- Streams and their events: the state the trigger workers keep per Kafka partition.
-- Times are bigint microseconds since the Unix epoch (UTC), the project's Instant: exact, no
-- timezone or driver date parsing on the way in or out (node-postgres turns timestamptz into a
-- millisecond Date). See docs/schema.md.

CREATE TYPE stream_state AS ENUM (
  'active', 'firing', 'expiring', 'error', 'expire_error', 'completed', 'retry_fire', 'retry_expire'
);

CREATE TABLE streams (
  id               text PRIMARY KEY,
  topic            text NOT NULL,
  partition        integer NOT NULL CHECK (partition >= 0),
  seq              bigint NOT NULL CHECK (seq >= 1),
  trigger          text NOT NULL,
  key              text NOT NULL,
  distinguishing   jsonb NOT NULL,
  state            stream_state NOT NULL DEFAULT 'active',
  first_event      bigint NOT NULL,
  last_event       bigint NOT NULL,
  expire_at        bigint NOT NULL,
  fire_at          bigint,
  closed_at        bigint,
  version          integer NOT NULL CHECK (version >= 1),
  criterion_counts integer[] NOT NULL DEFAULT '{}',
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  CHECK (first_event <= last_event),
  UNIQUE (topic, partition, seq)
);

-- What a worker loads when it is assigned a partition.
CREATE INDEX streams_live_by_partition ON streams (topic, partition, seq) WHERE state = 'active';
-- What pipeline workers poll for (streams handed to a pipeline or waiting for a retry).
CREATE INDEX streams_ready ON streams (state, id) WHERE state IN ('firing', 'expiring', 'retry_fire', 'retry_expire');

-- The allowed state changes (docs/schema.md); the same list as STREAM_TRANSITIONS in
-- src/engine/effects.ts. Staying in the same state (a version bump) is always allowed.
CREATE FUNCTION streams_check_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.state = OLD.state OR (OLD.state, NEW.state) IN (
    ('active', 'firing'), ('active', 'expiring'), ('active', 'completed'), ('active', 'error'),
    ('firing', 'completed'), ('firing', 'error'),
    ('expiring', 'completed'), ('expiring', 'expire_error'),
    ('error', 'retry_fire'), ('expire_error', 'retry_expire'),
    ('retry_fire', 'firing'), ('retry_expire', 'expiring')
  ) THEN
    NEW.updated_at := now();
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'stream %: state % cannot change to %', OLD.id, OLD.state, NEW.state
    USING ERRCODE = 'check_violation';
END;
$$;

CREATE TRIGGER streams_transition BEFORE UPDATE ON streams
  FOR EACH ROW EXECUTE FUNCTION streams_check_transition();

CREATE TABLE stream_events (
  stream_id   text NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
  message_id  text NOT NULL,
  event_type  text NOT NULL,
  "timestamp" bigint NOT NULL,
  -- {"name": {"type": "int"|"float"|"text"|"datetime", "value": …}}: the tag keeps 1.0 a float
  -- and a datetime (µs) a datetime, which a bare JSON value cannot.
  traits      jsonb NOT NULL,
  -- Arrival order: ties on timestamp read back in the order the stream received them.
  ord         bigint GENERATED ALWAYS AS IDENTITY,
  PRIMARY KEY (stream_id, message_id)
);

CREATE INDEX stream_events_by_time ON stream_events (stream_id, "timestamp", ord);
