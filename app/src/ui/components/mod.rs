pub mod error_note;
pub mod layout;
