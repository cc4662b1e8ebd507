-- The tools an agent's model is offered. `run_command` is never a default: an admin enables it.
alter table agents add column tools text[] not null
    default '{read_file,write_file,list_files,http_get,get_state,set_state,sql_query}';

-- What the `sql_query` tool reads, and all it may read: views over the engine's tables, nothing
-- of accounts, sessions, tokens or provider keys. A role of its own (made by the server at
-- start, see server/src/tools/sql.rs) gets SELECT on these views only.
create schema agent_views;

create view agent_views.tasks as
    select id, kind, description, status, result, error, summary, created_at, finished_at
    from runs;

create view agent_views.subtasks as
    select id, run_id as task_id, key, description, required_capabilities, status, agent_id,
           attempt, output, error, tokens, started_at, finished_at
    from nodes;

create view agent_views.agents as
    select id, name, capabilities, provider, model, state, tasks_completed, tasks_failed,
           tokens_used, created_at
    from agents;

create view agent_views.events as
    select seq, at, type, severity, subject, agent_id, run_id as task_id, node_id as subtask_id,
           data
    from events;

-- MCP servers attached to an agent: [{"name", "command" | "url"}] (see domain::agent::McpServer).
alter table agents add column mcp_servers jsonb not null default '[]';
