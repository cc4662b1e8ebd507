-- Workflows: saved DAG definitions, every save an immutable version. Runs of a workflow are
-- `runs` rows of kind 'workflow' that pin the version they ran.
create table workflows (
    id uuid primary key,
    name text not null,
    description text not null default '',
    -- A template is instantiated, not run.
    is_template boolean not null default false,
    -- The newest version; a save must name it as its base (optimistic concurrency).
    latest_version int not null default 1,
    created_by uuid references users (id),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index workflows_updated on workflows (updated_at desc, id);

create table workflow_versions (
    workflow_id uuid not null references workflows (id) on delete cascade,
    version int not null,
    definition jsonb not null,
    message text not null default '',
    -- The validation issues when it was saved; none means it was ready.
    issues jsonb not null default '[]',
    created_by uuid references users (id),
    created_at timestamptz not null default now(),
    primary key (workflow_id, version)
);

alter table runs
    add column workflow_id uuid references workflows (id),
    add column workflow_version int,
    add column inputs jsonb;
create index runs_workflow on runs (workflow_id, created_at desc) where workflow_id is not null;
