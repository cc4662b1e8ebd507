-- A task whose planner runs on a real model gets a summary of its subtasks' outputs, written
-- by the aggregator after the task completes (the concatenated `result` stays as it was).
alter table runs
    add column summary text,
    add column summary_error text,
    add column summary_pending boolean not null default false,
    add column summary_lease_expires_at timestamptz;
create index runs_to_summarize on runs (finished_at) where summary_pending;
