-- Hardening: bounded planning attempts, and events released by transaction visibility.

-- Raised by the statement that claims a run for planning, so a task whose planning never
-- finishes (a planner that dies on it) falls back, then fails, instead of being claimed forever.
alter table runs add column planning_attempts int not null default 0;

-- The transaction that wrote each event (its top-level id as a number). Streams and pagers
-- release events in (xid, seq) order, and only below the oldest transaction still running
-- (`pg_snapshot_xmin`): no event can appear there later, however late its commit, so a reader
-- resuming after its last position misses nothing. Existing events are all committed: 0.
alter table events add column xid bigint not null default 0;
alter table events alter column xid set default (pg_current_xact_id()::text::bigint);
create index events_position on events (xid, seq);
