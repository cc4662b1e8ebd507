-- Workflow runs through the same nodes as tasks. A workflow node is gated: it starts with one
-- more pending dependency than it has prerequisites, so the engine's completions never release
-- it; when only the gate is left, the advancer decides — skip it (no active incoming edge),
-- wait for a person (approval), or render its prompt and open the gate.
alter table nodes drop constraint nodes_status_check;
alter table nodes add constraint nodes_status_check
    check (status in ('queued', 'assigned', 'running', 'completed', 'failed', 'blocked',
                      'cancelled', 'skipped'));
alter table nodes
    add column step jsonb,
    add column gated boolean not null default false,
    add column approval text check (approval in ('waiting', 'approved', 'rejected')),
    add column decided_by uuid references users (id),
    add column decided_at timestamptz,
    add column decision_comment text;
-- The condition on the edge, tested on the prerequisite's output.
alter table node_deps add column condition jsonb;

-- What the advancer looks at: gated nodes down to their gate, not yet decided.
create index nodes_gated on nodes (id)
    where gated and pending_deps = 1 and status = 'queued' and approval is null;
-- A skipped node is finished too.
drop index nodes_open;
create index nodes_open on nodes (run_id) where status not in ('completed', 'skipped');
