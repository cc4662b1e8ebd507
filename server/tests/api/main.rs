//! Black-box tests: the real application on port 0 against a fresh database per test.

mod helpers;
mod pages;
mod session;
mod users;
