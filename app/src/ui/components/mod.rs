pub mod error_note;
pub mod layout;
pub mod refresh_button;
pub mod status_badge;
pub mod toasts;
