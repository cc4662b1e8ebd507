pub mod charts;
pub mod dag_view;
pub mod error_note;
pub mod event_table;
pub mod layout;
pub mod refresh_button;
pub mod status_badge;
pub mod toasts;
