-- The orchestration engine. Postgres is the coordination point between the web side and any
-- number of engine processes: rows are the truth, leases are database time, and every state
-- change appends an event in the same transaction.

-- Agents of the fleet. `state` follows the domain's AgentState machine.
create table agents (
    id uuid primary key,
    name text not null constraint agents_name_key unique,
    capabilities text[] not null,
    provider text not null default 'simulated',
    model text not null default 'simulated',
    system_prompt text not null default '',
    parent_id uuid references agents (id),
    state text not null default 'idle'
        check (state in ('spawning', 'idle', 'working', 'paused', 'error', 'terminated')),
    -- The node this agent is assigned (set with state 'working').
    current_node uuid,
    tasks_completed bigint not null default 0,
    tasks_failed bigint not null default 0,
    tokens_used bigint not null default 0,
    busy_ms bigint not null default 0,
    last_heartbeat timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
-- The daemon looks for idle agents on every pass.
create index agents_idle on agents (id) where state = 'idle';

-- A DAG run: a task (planned from text) or, later, a workflow run. Same engine for both.
create table runs (
    id uuid primary key,
    kind text not null check (kind in ('task', 'workflow')),
    description text not null,
    priority smallint not null check (priority between 0 and 10),
    status text not null default 'pending'
        check (status in ('pending', 'in_progress', 'completed', 'failed', 'cancelled')),
    -- How the plan came about: 'planner' or 'fallback' (with the reason in plan_note).
    planned_by text,
    plan_note text,
    -- A planner process holds a pending run while it calls the model.
    planning_lease_expires_at timestamptz,
    result text,
    error text,
    created_by uuid references users (id),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    finished_at timestamptz
);
create index runs_created on runs (created_at desc);
create index runs_status_created on runs (status, created_at desc);
create index runs_to_plan on runs (created_at) where status = 'pending';

-- Nodes of a run (a task's subtasks). `pending_deps` counts unfinished prerequisites, so
-- "ready" is a plain indexed predicate instead of a join.
create table nodes (
    id uuid primary key,
    run_id uuid not null references runs (id) on delete cascade,
    key text not null,
    position int not null,
    description text not null,
    required_capabilities text[] not null,
    priority smallint not null,
    status text not null default 'queued'
        check (status in ('queued', 'assigned', 'running', 'completed', 'failed', 'blocked', 'cancelled')),
    pending_deps int not null,
    reserved_for uuid references agents (id),
    agent_id uuid references agents (id),
    -- Monotonic per node: the fencing number of the current claim.
    attempt int not null default 0,
    -- Failed attempts since the last manual retry, for the retry policy.
    failures int not null default 0,
    -- Random per claim: a completion must present it, so a stale attempt is refused.
    lease_token uuid,
    lease_expires_at timestamptz,
    worker_id uuid,
    not_before timestamptz not null default now(),
    ready_at timestamptz,
    output text,
    error text,
    tokens bigint not null default 0,
    started_at timestamptz,
    finished_at timestamptz,
    constraint nodes_run_key unique (run_id, key)
);
create index nodes_run on nodes (run_id, position);
-- "Is this run finished?" is one probe: only unfinished nodes are in this index.
create index nodes_open on nodes (run_id) where status <> 'completed';
-- The claimable set stays small: only ready rows are in it.
create index nodes_ready on nodes (priority desc, ready_at) where status = 'queued' and pending_deps = 0;
create index nodes_assigned on nodes (ready_at) where status = 'assigned';
create index nodes_leased on nodes (lease_expires_at) where status in ('assigned', 'running');

create table node_deps (
    node_id uuid not null references nodes (id) on delete cascade,
    depends_on uuid not null references nodes (id) on delete cascade,
    primary key (node_id, depends_on)
);
create index node_deps_depends_on on node_deps (depends_on);

-- One row per claim of a node; at most one completion per node, ever.
create table attempts (
    node_id uuid not null references nodes (id) on delete cascade,
    attempt int not null,
    agent_id uuid references agents (id),
    worker_id uuid,
    outcome text check (outcome in ('completed', 'failed', 'lost', 'cancelled')),
    error text,
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    primary key (node_id, attempt)
);
create unique index attempts_one_completion on attempts (node_id) where outcome = 'completed';

-- Engine processes (`flotilla serve` and `flotilla worker`), with their heartbeats.
create table workers (
    id uuid primary key,
    hostname text not null,
    pid int not null,
    started_at timestamptz not null default now(),
    last_heartbeat timestamptz not null default now(),
    stopped_at timestamptz
);

-- Every state change. `seq` orders them; readers page with `after`.
create table events (
    seq bigint generated always as identity primary key,
    -- The moment of the change, not the start of its transaction: latencies are measured on it.
    at timestamptz not null default clock_timestamp(),
    type text not null,
    severity text not null default 'info' check (severity in ('debug', 'info', 'warning', 'error', 'critical')),
    subject text not null,
    agent_id uuid,
    run_id uuid,
    node_id uuid,
    data jsonb not null default '{}'
);
create index events_type on events (type, seq);
create index events_agent on events (agent_id, seq) where agent_id is not null;
create index events_run on events (run_id, seq) where run_id is not null;

-- API tokens for scripts: only a SHA-256 of the secret is kept.
create table api_tokens (
    id uuid primary key,
    user_id uuid not null references users (id) on delete cascade,
    name text not null,
    token_hash bytea not null constraint api_tokens_hash_key unique,
    created_at timestamptz not null default now(),
    last_used_at timestamptz,
    revoked_at timestamptz
);

-- Queue tables churn: every subtask updates its node and its agent several times. Vacuum them
-- early and without throttling so dead rows do not pile up in the hot partial indexes, and
-- leave room on each page for updates that can stay on it.
alter table agents set (fillfactor = 50, autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 2000, autovacuum_vacuum_cost_delay = 0);
alter table nodes set (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_cost_delay = 0);
alter table attempts set (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0);
