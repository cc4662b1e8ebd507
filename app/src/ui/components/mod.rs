pub mod error_note;
pub mod layout;
pub mod status_badge;
pub mod toasts;
