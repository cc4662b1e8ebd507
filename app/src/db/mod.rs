//! Queries, one module per aggregate. Functions take `&mut PgConnection` or an executor so the
//! caller decides the transaction.

pub mod login_attempts;
pub mod users;

pub use sqlx::PgPool;
