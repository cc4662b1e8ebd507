//! `AppError`: what a server function may tell the browser. Internal causes are logged on the
//! server and replaced by a generic message; only the kind and a user-facing reason cross.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The small set of outcomes a caller can act on; REST maps the same kinds to status codes.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    Invalid,
    TooLarge,
    LengthRequired,
    UnsupportedMediaType,
    MethodNotAllowed,
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
            ErrorKind::TooLarge => 413,
            ErrorKind::LengthRequired => 411,
            ErrorKind::UnsupportedMediaType => 415,
            ErrorKind::MethodNotAllowed => 405,
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
            ErrorKind::TooLarge => "too_large",
            ErrorKind::LengthRequired => "length_required",
            ErrorKind::UnsupportedMediaType => "unsupported_media_type",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
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
    /// The input field refused, when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `rate_limited`: when to try again, seconds (also sent as `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
    /// For a workflow refused by validation: every issue, each naming its node, edge or input.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issues: Vec<crate::domain::workflow::Issue>,
}

impl AppError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            field: None,
            retry_after_secs: None,
            issues: Vec::new(),
        }
    }

    /// Names the refused input field.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
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
            ServerFnErrorErr::Args(m)
            | ServerFnErrorErr::MissingArg(m)
            | ServerFnErrorErr::Deserialization(m) => Self::new(
                ErrorKind::Invalid,
                format!("the arguments could not be read: {}", plain_message(&m)),
            ),
            ServerFnErrorErr::UnsupportedRequestMethod(_) => Self::new(
                ErrorKind::MethodNotAllowed,
                "this server function does not take that method",
            ),
            ServerFnErrorErr::Request(_) | ServerFnErrorErr::Response(_) => Self::new(
                ErrorKind::Unavailable,
                "the server could not be reached; check your connection",
            ),
            other => Self::new(ErrorKind::Internal, other.to_string()),
        }
    }
}

/// A decoder's message without its internals: Rust type names become what they mean to a
/// caller, and anything past the first line or 200 characters is dropped.
pub fn plain_message(raw: &str) -> String {
    let first = raw.lines().next().unwrap_or_default();
    let mut out = String::with_capacity(first.len());
    let mut words = first.split(' ').peekable();
    while let Some(w) = words.next() {
        let replaced = match w {
            "struct" | "enum" | "tuple" if words.peek().is_some() => {
                let name = words.next().unwrap_or_default();
                let tail: String = name
                    .chars()
                    .skip_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let noun = if w == "enum" {
                    "a known value"
                } else {
                    "an object"
                };
                format!("{noun}{tail}")
            }
            other => other.to_owned(),
        };
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&replaced);
    }
    out.chars().take(200).collect()
}

#[cfg(feature = "ssr")]
mod from_causes {
    use super::{AppError, ErrorKind};
    use crate::auth::{Forbidden, LoginError};
    use crate::commands::CommandError;
    use crate::db::agents::AgentDbError;
    use crate::db::runs::RunDbError;
    use crate::db::users::UserDbError;
    use crate::db::workflow_runs::DecisionError;
    use crate::db::workflows::WorkflowDbError;
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
                CommandError::Invalid { field, reason } => {
                    AppError::invalid(reason).with_field(field)
                }
                CommandError::Credential(c) => {
                    let field = c.field();
                    AppError::invalid(c).with_field(field)
                }
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
                    // A well-formed reference to nothing: 404, naming the field.
                    AgentDbError::ParentNotFound => {
                        AppError::new(ErrorKind::NotFound, a.to_string()).with_field("parent_id")
                    }
                    AgentDbError::Db(db) => db.into(),
                },
                CommandError::User(u) => u.into(),
                CommandError::Provider(p) => match p {
                    crate::db::providers::ProviderDbError::NameTaken(_) => {
                        AppError::new(ErrorKind::Conflict, p.to_string()).with_field("name")
                    }
                    crate::db::providers::ProviderDbError::NotFound => {
                        AppError::new(ErrorKind::NotFound, p.to_string())
                    }
                    crate::db::providers::ProviderDbError::Db(db) => db.into(),
                },
                CommandError::Workflow(w) => match w {
                    WorkflowDbError::NotFound | WorkflowDbError::VersionNotFound(_) => {
                        AppError::new(ErrorKind::NotFound, w.to_string())
                    }
                    WorkflowDbError::Stale { .. } => {
                        AppError::new(ErrorKind::Conflict, w.to_string()).with_field("base_version")
                    }
                    WorkflowDbError::Db(db) => db.into(),
                },
                CommandError::Decision(d) => match d {
                    DecisionError::RunNotFound | DecisionError::NodeNotFound(_) => {
                        AppError::new(ErrorKind::NotFound, d.to_string())
                    }
                    DecisionError::NotApproval(_) | DecisionError::NotWaiting { .. } => {
                        AppError::new(ErrorKind::Conflict, d.to_string())
                    }
                    DecisionError::Db(db) => db.into(),
                },
                CommandError::Issues(issues) => AppError {
                    issues: issues.clone(),
                    ..AppError::invalid(CommandError::Issues(issues))
                },
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
                LoginError::Throttled { retry_after_secs } => AppError {
                    retry_after_secs: Some(retry_after_secs),
                    ..AppError::new(ErrorKind::RateLimited, e.to_string())
                },
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
            ErrorKind::TooLarge,
            ErrorKind::LengthRequired,
            ErrorKind::UnsupportedMediaType,
            ErrorKind::MethodNotAllowed,
            ErrorKind::RateLimited,
        ] {
            assert!((400..500).contains(&kind.status()), "{kind:?}");
        }
        assert_eq!(ErrorKind::Internal.status(), 500);
    }

    #[test]
    fn decoder_messages_lose_their_type_names() {
        assert_eq!(
            plain_message("invalid type: integer `5`, expected struct SpawnAgent at line 1"),
            "invalid type: integer `5`, expected an object at line 1"
        );
        assert_eq!(
            plain_message("expected enum RunStatus"),
            "expected a known value"
        );
        assert!(!plain_message("x\ninternal detail").contains("internal"));
    }

    proptest::proptest! {
        /// Any decoder text comes out as one short line, never a panic.
        #[test]
        fn any_message_becomes_one_short_line(raw in "\\PC*|(struct|enum|tuple| |\n|[A-Za-z:_`])*") {
            let out = plain_message(&raw);
            proptest::prop_assert!(out.chars().count() <= 200 && !out.contains('\n'));
        }
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
