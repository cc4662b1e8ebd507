-- Who caused each event. The commands set the acting user for their transaction
-- (`set_config('flotilla.actor_id', …, true)`); the defaults read it, so every event the
-- transaction writes is attributed and no writer passes an actor along. The engine's own
-- events have none.
alter table events
    add column actor_id uuid
        default nullif(current_setting('flotilla.actor_id', true), '')::uuid,
    add column actor text
        default nullif(current_setting('flotilla.actor', true), ''),
    -- The API token's name when the actor used one.
    add column actor_token text
        default nullif(current_setting('flotilla.actor_token', true), '');

-- Partial: the engine's events (the bulk) never touch it.
create index events_actor on events (actor, seq) where actor is not null;
