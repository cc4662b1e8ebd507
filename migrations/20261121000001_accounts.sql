-- Accounts: users with argon2id password hashes and one of three roles.
create type user_role as enum ('admin', 'member', 'viewer');

create table users (
    id uuid primary key,
    -- Stored lowercased by the domain's Username parser; the unique constraint is the final word.
    username text not null constraint users_username_key unique,
    password_hash text not null,
    role user_role not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

-- Login attempts, kept briefly, for rate limiting per account and per client address.
-- Living in Postgres (not process memory) makes the limit hold across every server process.
create table login_attempts (
    id bigint generated always as identity primary key,
    username text not null,
    client_ip text,
    succeeded boolean not null,
    at timestamptz not null default now()
);
create index login_attempts_username_at on login_attempts (username, at);
create index login_attempts_ip_at on login_attempts (client_ip, at);
