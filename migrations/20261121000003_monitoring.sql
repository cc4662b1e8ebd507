-- Monitoring: health of agents and time series of resource use.

-- Set when the agent's lease was rescued (its worker went silent); cleared, with an
-- `agent.recovered` event, once it is seen alive again.
alter table agents add column unresponsive_since timestamptz;
create index agents_unresponsive on agents (id) where unresponsive_since is not null;

-- CPU and memory of each engine process. Raw samples every 30 s (`resolution_secs` = 30) are
-- rolled up into hourly rows (3600) after a day, so long ranges stay cheap to chart.
create table process_samples (
    worker_id uuid not null references workers (id) on delete cascade,
    resolution_secs int not null check (resolution_secs > 0),
    at timestamptz not null,
    cpu_percent real not null,
    rss_bytes bigint not null,
    primary key (worker_id, resolution_secs, at)
);
create index process_samples_at on process_samples (resolution_secs, at);

-- Each agent's cumulative counters, written only when they changed; a chart takes the
-- differences between consecutive samples.
create table agent_samples (
    agent_id uuid not null references agents (id) on delete cascade,
    resolution_secs int not null check (resolution_secs > 0),
    at timestamptz not null,
    tasks_completed bigint not null,
    tasks_failed bigint not null,
    tokens_used bigint not null,
    busy_ms bigint not null,
    primary key (agent_id, resolution_secs, at)
);
create index agent_samples_at on agent_samples (resolution_secs, at);

-- Time-range reads of the event log (overview throughput, the events page's time filter). Events
-- are appended in time order, so a BRIN index stays tiny and costs next to nothing per insert.
create index events_at on events using brin (at);
