//! Tasks: submit, list, inspect, cancel, retry a subtask.

use super::AppError;
use crate::domain::ids::{NodeId, RunId};
use crate::domain::run::{TaskDetail, TaskSummary};
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

/// Submits a task from the tasks page's form; blank caps mean uncapped.
#[server(endpoint = "tasks/submit")]
pub async fn submit_task(
    description: String,
    priority: Option<i64>,
    #[server(default)] max_tokens: String,
    #[server(default)] max_cost_micros: String,
) -> Result<RunId, AppError> {
    use super::ssr::{context, current_user, form_number, run};
    run(async {
        let me = current_user().await?;
        let caps = crate::commands::Caps {
            max_tokens: form_number("max_tokens", &max_tokens)?,
            max_cost_micros: form_number("max_cost_micros", &max_cost_micros)?,
        };
        let id = crate::commands::submit_task(
            &context()?.pool,
            &me.into(),
            &description,
            priority,
            caps,
        )
        .await?;
        // A plain form post (no WASM yet) lands on the new task's page.
        leptos_axum::redirect(&format!("/tasks/{id}"));
        Ok(id)
    })
    .await
}

#[server(endpoint = "tasks/list", input = GetUrl)]
pub async fn list_tasks() -> Result<Vec<TaskSummary>, AppError> {
    use super::ssr::{context, run};
    run(async { Ok(crate::db::runs::list(&context()?.pool, None, 100, None).await?) }).await
}

/// A task with the layout of its subtask DAG (computed here, so the server's rendering and
/// the browser's hydration draw the same picture).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskPage {
    pub task: TaskDetail,
    pub dag: crate::domain::dag_view::DagLayout,
    /// Each attempt's conversation with its model.
    pub transcripts: Vec<crate::domain::usage::TranscriptView>,
}

#[server(endpoint = "tasks/get", input = GetUrl)]
pub async fn get_task(id: RunId) -> Result<TaskPage, AppError> {
    use super::ssr::{context, run};
    run(async {
        let mut conn = context()?.pool.acquire().await?;
        let task = crate::db::runs::get(&mut conn, id)
            .await?
            .ok_or_else(|| AppError::new(super::ErrorKind::NotFound, "no such task"))?;
        let dag = crate::domain::dag_view::for_task(&task);
        let transcripts = crate::db::transcripts::for_run(&mut conn, id).await?;
        Ok(TaskPage {
            task,
            dag,
            transcripts,
        })
    })
    .await
}

#[server(endpoint = "tasks/cancel")]
pub async fn cancel_task(id: RunId) -> Result<(), AppError> {
    use super::ssr::{context, current_user, run};
    run(async {
        Ok(
            crate::commands::cancel_task(&context()?.pool, &current_user().await?.into(), id)
                .await?,
        )
    })
    .await
}

#[server(endpoint = "subtasks/retry")]
pub async fn retry_subtask(id: NodeId) -> Result<(), AppError> {
    use super::ssr::{context, current_user, run};
    run(async {
        crate::commands::retry_subtask(&context()?.pool, &current_user().await?.into(), id).await?;
        Ok(())
    })
    .await
}
