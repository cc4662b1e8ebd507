//! `AppError`: what a server function may tell the browser. Internal causes are logged on the
//! server and replaced by a generic message; only the kind and a user-facing reason cross.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The small set of outcomes a caller can act on; REST maps the same kinds to status codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    Invalid,
    RateLimited,
    Unavailable,
    Internal,
}

impl ErrorKind {
    /// The HTTP status for this kind; the same table serves REST and server functions.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::Unauthenticated => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::Invalid => 422,
            ErrorKind::RateLimited => 429,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }

    /// The stable machine-readable code in `{"error": {"code", "message"}}`.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Invalid => "invalid",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppError {
    pub kind: ErrorKind,
    pub message: String,
}

impl AppError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Invalid, message.to_string())
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, message)
    }

    pub fn unauthenticated() -> Self {
        Self::new(ErrorKind::Unauthenticated, "log in first")
    }

    /// Logs the cause with a correlation id and returns an error that reveals nothing of it.
    #[cfg(feature = "ssr")]
    pub fn internal(cause: impl fmt::Display) -> Self {
        let id = uuid::Uuid::new_v4();
        tracing::error!(error.id = %id, error = %cause, "internal error");
        Self::new(
            ErrorKind::Internal,
            format!("internal error (reference {id})"),
        )
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AppError {}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(m) | ServerFnErrorErr::MissingArg(m) => {
                Self::new(ErrorKind::Invalid, m)
            }
            ServerFnErrorErr::Request(_) | ServerFnErrorErr::Response(_) => Self::new(
                ErrorKind::Unavailable,
                "the server could not be reached; check your connection",
            ),
            other => Self::new(ErrorKind::Internal, other.to_string()),
        }
    }
}

#[cfg(feature = "ssr")]
mod from_causes {
    use super::{AppError, ErrorKind};
    use crate::auth::{Forbidden, LoginError};
    use crate::commands::CommandError;
    use crate::db::agents::AgentDbError;
    use crate::db::runs::RunDbError;
    use crate::db::users::UserDbError;
    use crate::domain::account::CredentialError;

    impl From<CredentialError> for AppError {
        fn from(e: CredentialError) -> Self {
            AppError::invalid(e)
        }
    }

    impl From<sqlx::Error> for AppError {
        fn from(e: sqlx::Error) -> Self {
            match e {
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => {
                    tracing::warn!(error = %e, "database unavailable");
                    AppError::new(ErrorKind::Unavailable, "the database is unavailable")
                }
                other => AppError::internal(other),
            }
        }
    }

    impl From<UserDbError> for AppError {
        fn from(e: UserDbError) -> Self {
            match e {
                UserDbError::UsernameTaken(_) => AppError::new(ErrorKind::Conflict, e.to_string()),
                UserDbError::NotFound => AppError::new(ErrorKind::NotFound, e.to_string()),
                UserDbError::Db(db) => db.into(),
            }
        }
    }

    impl From<Forbidden> for AppError {
        fn from(e: Forbidden) -> Self {
            AppError::forbidden(e.to_string())
        }
    }

    impl From<CommandError> for AppError {
        fn from(e: CommandError) -> Self {
            match e {
                CommandError::Forbidden(f) => f.into(),
                CommandError::Invalid { .. } | CommandError::Credential(_) => AppError::invalid(e),
                CommandError::Conflict(m) => AppError::new(ErrorKind::Conflict, m),
                CommandError::Run(r) => match r {
                    RunDbError::NotFound | RunDbError::NodeNotFound => {
                        AppError::new(ErrorKind::NotFound, r.to_string())
                    }
                    RunDbError::AlreadyFinal(_) | RunDbError::NotRetryable(_) => {
                        AppError::new(ErrorKind::Conflict, r.to_string())
                    }
                    RunDbError::Db(db) => db.into(),
                },
                CommandError::Agent(a) => match a {
                    AgentDbError::NameTaken(_) | AgentDbError::Illegal(_) => {
                        AppError::new(ErrorKind::Conflict, a.to_string())
                    }
                    AgentDbError::NotFound => AppError::new(ErrorKind::NotFound, a.to_string()),
                    AgentDbError::ParentNotFound => AppError::invalid(a),
                    AgentDbError::Db(db) => db.into(),
                },
                CommandError::User(u) => u.into(),
                CommandError::Hash(h) => AppError::internal(h),
                CommandError::Db(db) => db.into(),
            }
        }
    }

    impl From<LoginError> for AppError {
        fn from(e: LoginError) -> Self {
            match e {
                LoginError::BadCredentials => {
                    AppError::new(ErrorKind::Unauthenticated, e.to_string())
                }
                LoginError::Throttled => AppError::new(ErrorKind::RateLimited, e.to_string()),
                LoginError::Db(db) => db.into(),
                other => AppError::internal(other),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_but_internal_is_a_client_error() {
        for kind in [
            ErrorKind::Unauthenticated,
            ErrorKind::Forbidden,
            ErrorKind::NotFound,
            ErrorKind::Conflict,
            ErrorKind::Invalid,
            ErrorKind::RateLimited,
        ] {
            assert!((400..500).contains(&kind.status()), "{kind:?}");
        }
        assert_eq!(ErrorKind::Internal.status(), 500);
    }

    #[test]
    fn errors_survive_the_wire_encoding() {
        let err = AppError::invalid("description too short");
        let wire = serde_json::to_string(&err).unwrap_or_default();
        let back: AppError =
            serde_json::from_str(&wire).unwrap_or_else(|_| AppError::unauthenticated());
        assert_eq!(back, err);
    }
}
