pub mod agents;
pub mod events;
pub mod login;
pub mod not_found;
pub mod overview;
pub mod task_detail;
pub mod tasks;
pub mod users;
