-- Every model call, the failed ones included: who made it, for what, its four token counts
-- (normalised: disjoint), its cost in integer micro-units and its latency. Attempts, subtasks,
-- agents and tasks roll up from here, so a retried or failed attempt still counts. Kept apart
-- from `events` (which retention prunes): this is the bill.
create table llm_calls (
    id bigint generated always as identity primary key,
    run_id uuid not null references runs (id) on delete cascade,
    -- The subtask and attempt a worker made the call for; null for the planner and aggregator.
    node_id uuid references nodes (id) on delete cascade,
    attempt int,
    agent_id uuid,
    purpose text not null check (purpose in ('plan', 'execute', 'aggregate')),
    provider text not null,
    model text not null,
    input_tokens bigint not null check (input_tokens >= 0),
    cache_read_tokens bigint not null check (cache_read_tokens >= 0),
    cache_write_tokens bigint not null check (cache_write_tokens >= 0),
    output_tokens bigint not null check (output_tokens >= 0),
    cost_micros bigint not null check (cost_micros >= 0),
    latency_ms bigint not null check (latency_ms >= 0),
    -- Why the call failed (classified by the client), when it did.
    error text,
    created_at timestamptz not null default now()
);
create index llm_calls_run on llm_calls (run_id);
create index llm_calls_agent on llm_calls (agent_id, id) where agent_id is not null;

-- Why an agent is in the `error` state (its provider refused its configuration); resuming
-- clears it.
alter table agents add column error text;

-- The agents' shared key-value state (`get_state`/`set_state` tools), scoped to a task; an
-- entry past `expires_at` reads as absent and is pruned by retention.
create table task_state (
    run_id uuid not null references runs (id) on delete cascade,
    key text not null,
    value jsonb not null,
    expires_at timestamptz not null,
    updated_at timestamptz not null default now(),
    primary key (run_id, key)
);

-- Each attempt's conversation with its model: messages, tool calls and results, whole (events
-- carry them truncated).
create table transcripts (
    node_id uuid not null references nodes (id) on delete cascade,
    attempt int not null,
    agent_id uuid,
    messages jsonb not null,
    created_at timestamptz not null default now(),
    primary key (node_id, attempt)
);
create index transcripts_agent on transcripts (agent_id, created_at desc);

-- Model providers managed by admins. The API key is sealed with XChaCha20-Poly1305 under the
-- process's master key, the row's id and `key_version` as associated data: a ciphertext copied
-- to another row does not open.
create table providers (
    id uuid primary key,
    name text not null constraint providers_name_key unique,
    kind text not null check (kind in ('anthropic', 'openai_compatible')),
    base_url text not null,
    api_key_sealed bytea,
    key_version int not null default 1,
    default_model text not null,
    -- Per model: {"input", "output", "cache_read", "cache_write"} in micro-units per million.
    prices jsonb not null default '{}',
    json_format text not null default 'json_schema'
        check (json_format in ('json_schema', 'json_object')),
    -- The newest rate-limit headers the provider sent, by name.
    rate_limits jsonb not null default '{}',
    rate_limits_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

-- A value sealed under the master key when it was first used: a process started with another
-- key cannot open it and refuses to start, instead of failing on every provider later.
create table secret_key_check (
    id int primary key check (id = 1),
    sealed bytea not null,
    created_at timestamptz not null default now()
);

-- Caps on what a scope's model calls may use (tokens, cost), with what was spent and what
-- calls in flight have reserved: a call reserves its worst case before it is made and settles
-- to its actual usage after, in conditional updates, so parallel calls racing for a cap's
-- remainder cannot all pass. One row per capped scope; `scope` leaves room for the
-- hierarchical budgets to come (a reservation will climb the tree).
create table budgets (
    scope text not null check (scope in ('agent', 'task')),
    id uuid not null,
    cap_tokens bigint check (cap_tokens > 0),
    cap_cost_micros bigint check (cap_cost_micros >= 0),
    spent_tokens bigint not null default 0,
    spent_cost_micros bigint not null default 0,
    reserved_tokens bigint not null default 0 check (reserved_tokens >= 0),
    reserved_cost_micros bigint not null default 0 check (reserved_cost_micros >= 0),
    primary key (scope, id)
);
