-- A sub-workflow node runs a run of its own: the child names the node it runs for, and its
-- end completes or fails that node.
alter table runs add column parent_node uuid references nodes (id) on delete set null;
create index runs_parent_node on runs (parent_node) where parent_node is not null;
