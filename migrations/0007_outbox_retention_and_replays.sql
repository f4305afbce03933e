-- Pruning deletes published rows by age, a few thousand at a time. A BRIN index on created_at finds the
-- old end of the table for almost nothing: rows are appended in creation order, the index is a few pages,
-- and created_at never changes, so it costs the claim's and the mark's updates nothing.
CREATE INDEX outbox_created_brin ON outbox USING brin (created_at);

-- `relay replay` checkpoints: one row per replay, with how far it got, so an interrupted replay resumes
-- where it stopped instead of sending again what it already sent. A rerun of the same command finds it
-- by `request` (the options as typed: `--since 2h` means the same replay when run again, not a new range).
CREATE TABLE outbox_replays (
  id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  stream       text        NOT NULL,
  request      text        NOT NULL,
  since        timestamptz NOT NULL,
  until        timestamptz NOT NULL,
  event_type   text,
  total        integer     NOT NULL,
  sent         integer     NOT NULL DEFAULT 0,
  -- The last outbox seq sent: the replay walks rows in seq order and goes on after this one.
  last_seq     bigint      NOT NULL DEFAULT 0,
  started_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz
);
CREATE UNIQUE INDEX outbox_replays_unfinished_idx ON outbox_replays (stream, request)
  WHERE finished_at IS NULL;
