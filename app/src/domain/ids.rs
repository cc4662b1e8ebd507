//! Identifier newtypes, so an agent id can never be passed where a run id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// An agent of the fleet.
    AgentId
);
id_type!(
    /// A task — one kind of DAG run (a workflow run is the other).
    RunId
);
id_type!(
    /// A node of a run's DAG: a subtask of a task.
    NodeId
);
id_type!(
    /// A worker process.
    WorkerId
);
id_type!(
    /// A stored workflow (all its versions).
    WorkflowId
);
