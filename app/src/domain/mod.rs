//! Pure domain types: everything here compiles for both the server and the browser.

pub mod account;
