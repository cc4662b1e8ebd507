//! Workflows for the UI: list, create from a template, open in the editor, save a version.

use super::AppError;
use crate::domain::ids::WorkflowId;
use crate::domain::workflow::{Definition, WorkflowDetail, WorkflowSummary};
use leptos::prelude::*;
use leptos::server_fn::codec::{GetUrl, Json};

#[server(endpoint = "workflows/list", input = GetUrl)]
pub async fn list_workflows() -> Result<Vec<WorkflowSummary>, AppError> {
    use super::ssr::{context, run};
    run(async { Ok(crate::db::workflows::list(&context()?.pool, false, 200, None).await?) }).await
}

/// A new workflow from a built-in template (or an empty one when `template` is blank); the
/// browser goes on to its editor.
#[server(endpoint = "workflows/create")]
pub async fn create_workflow(template: String) -> Result<WorkflowId, AppError> {
    use super::ssr::{context, current_user, run};
    use crate::commands::workflows as cmd;
    run(async {
        let me = current_user().await?.into();
        let pool = &context()?.pool;
        let detail = if template.trim().is_empty() {
            let draft = cmd::Draft {
                name: "Untitled workflow".into(),
                description: String::new(),
                definition: Definition::default(),
                message: String::new(),
            };
            cmd::create(pool, &me, draft, false).await?
        } else {
            cmd::instantiate(pool, &me, template.trim(), None).await?
        };
        leptos_axum::redirect(&format!("/workflows/{}", detail.id));
        Ok(detail.id)
    })
    .await
}

/// A workflow for the editor, with the names its agent steps may use.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EditorPage {
    pub workflow: WorkflowDetail,
    pub agents: Vec<String>,
}

#[server(endpoint = "workflows/get", input = GetUrl)]
pub async fn get_workflow(id: WorkflowId) -> Result<EditorPage, AppError> {
    use super::ssr::{context, run};
    run(async {
        let pool = &context()?.pool;
        let workflow = crate::db::workflows::get(pool, id, None)
            .await
            .map_err(crate::commands::CommandError::from)?;
        let agents = sqlx::query_scalar!(
            "select name from agents where state <> 'terminated' order by name"
        )
        .fetch_all(pool)
        .await?;
        Ok(EditorPage { workflow, agents })
    })
    .await
}

/// Saves the editor's graph as a new version on top of `base_version` (409 when stale).
#[server(endpoint = "workflows/save", input = Json)]
pub async fn save_workflow(
    id: WorkflowId,
    base_version: i32,
    definition: Definition,
    message: String,
) -> Result<WorkflowDetail, AppError> {
    use super::ssr::{context, current_user, run};
    use crate::commands::workflows as cmd;
    run(async {
        let save = cmd::Save {
            base_version,
            name: None,
            description: None,
            definition,
            message,
        };
        Ok(cmd::save(&context()?.pool, &current_user().await?.into(), id, save).await?)
    })
    .await
}
