-- A run's phases with their start and end times (JSON list of {phase, started_at, ended_at}), and
-- how many records it expected to handle when it started (null: not known in advance).
alter table sync_history add column timeline text;
alter table sync_history add column estimated_records bigint;
