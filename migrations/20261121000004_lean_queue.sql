-- Fewer index entries per subtask: every index on a queue table is written again on each
-- non-HOT update, and a subtask updates its agent twice and its node two or three times.

-- The agents table holds one row per agent (hundreds to a few thousand); the daemon reads the
-- idle ones with a scan of a few pages. Without an index on `state`, an agent's updates
-- (idle → working → idle, counters, heartbeats) stay on their page (HOT) and write no index.
drop index agents_idle;

-- A run's nodes are found through the unique (run_id, key) index and sorted by position in
-- memory (a run has at most a few thousand); the second index on run_id cost an entry on
-- every node update.
drop index nodes_run;

-- An attempt's row is written once, when it ends (completed, failed, lost or cancelled): while
-- it runs, the node holds its number, agent, worker and start. One insert instead of an insert
-- and one or two updates, each with its index entries. `started_at` is null for an attempt that
-- was assigned and ended before any worker started it. Rows of attempts still open when this
-- migration runs go: their nodes hold the same facts, and write the row when they end.
delete from attempts where outcome is null;
alter table attempts alter column started_at drop not null,
                     alter column started_at drop default,
                     alter column outcome set not null,
                     alter column finished_at set not null;

-- Agents are never deleted (a terminated agent keeps its row, its history and its counters), so
-- a reference to one cannot dangle; checking it cost a trigger call and a row lock on the agent
-- for every assignment and every recorded attempt, about a fifth of an assignment's time.
alter table nodes drop constraint nodes_agent_id_fkey;
alter table attempts drop constraint attempts_agent_id_fkey;
