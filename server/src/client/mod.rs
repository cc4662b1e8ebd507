//! The `flotilla` command line as a client of a running server: `login` stores an API token,
//! every other command calls the REST API or follows the event stream. Exit codes scripts can
//! use: 0 done (a watched task completed), 1 failed (or cancelled), 2 usage, 3 unreachable or
//! unauthorised.

mod api;
mod commands;
mod credentials;
mod follow;
mod output;
mod workflow;

pub use commands::{ClientCommand, run};

/// How a client command ended, as the process's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Done = 0,
    Failed = 1,
    Usage = 2,
    Unreachable = 3,
}

/// A client failure with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("not authorised: {0} (run `flotilla login`, or set FLOTILLA_TOKEN)")]
    Unauthorised(String),
    /// The server refused the request (4xx other than 401/403): its message.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl ClientError {
    pub fn exit(&self) -> Exit {
        match self {
            ClientError::Usage(_) => Exit::Usage,
            ClientError::Unreachable { .. } | ClientError::Unauthorised(_) => Exit::Unreachable,
            ClientError::Refused(_) | ClientError::Io(_) => Exit::Failed,
        }
    }
}
