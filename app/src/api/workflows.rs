//! Workflows for the UI: list, create from a template or an import, open any version in the
//! editor, save a version, and a workflow's runs.

use super::AppError;
use crate::domain::ids::WorkflowId;
use crate::domain::workflow::{
    Definition, RunSummary, SubworkflowInfo, VersionSummary, WorkflowDetail, WorkflowSummary,
};
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
            cmd::instantiate(pool, &me, template.trim(), None, None, None).await?
        };
        leptos_axum::redirect(&format!("/workflows/{}", detail.id));
        Ok(detail.id)
    })
    .await
}

/// A workflow version for the editor (the newest unless asked), with the names its agent
/// steps may use and the workflow's history.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EditorPage {
    pub workflow: WorkflowDetail,
    pub agents: Vec<String>,
    /// Every saved version, newest first.
    pub versions: Vec<VersionSummary>,
    /// The other workflows, which a step may run (at their newest version).
    pub choices: Vec<SubworkflowChoice>,
    /// What the validation knows of sub-workflow versions: those the shown version runs and
    /// the choices' newest, with everything they run — the server's catalog, so the browser's
    /// validation says what the server's does.
    pub known: Vec<KnownVersion>,
}

/// A workflow a step may run, at its newest version.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SubworkflowChoice {
    pub id: WorkflowId,
    pub name: String,
    pub version: i32,
}

/// One sub-workflow version the validation knows.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KnownVersion {
    pub workflow_id: uuid::Uuid,
    pub version: i32,
    pub info: SubworkflowInfo,
}

/// How many other workflows the editor offers as sub-workflows (the most recently saved).
#[cfg(feature = "ssr")]
const MAX_CHOICES: i64 = 200;

#[server(endpoint = "workflows/get", input = GetUrl)]
pub async fn get_workflow(
    id: WorkflowId,
    #[server(default)] version: Option<i32>,
) -> Result<EditorPage, AppError> {
    use super::ssr::{context, run};
    use crate::commands::CommandError;
    run(async {
        let pool = &context()?.pool;
        let workflow = crate::db::workflows::get(pool, id, version)
            .await
            .map_err(CommandError::from)?;
        let mut conn = pool.acquire().await?;
        let versions = crate::db::workflows::versions(&mut conn, id)
            .await
            .map_err(CommandError::from)?;
        let choices: Vec<SubworkflowChoice> =
            crate::db::workflows::list(&mut *conn, false, MAX_CHOICES, None)
                .await?
                .into_iter()
                .filter(|w| w.id != id)
                .map(|w| SubworkflowChoice {
                    id: w.id,
                    name: w.name,
                    version: w.version,
                })
                .collect();
        let newest: Vec<_> = choices.iter().map(|c| (c.id, c.version)).collect();
        let catalog = crate::commands::workflows::editor_catalog(
            &mut conn,
            id,
            &workflow.definition,
            &newest,
        )
        .await?;
        let mut agents = catalog.agents;
        agents.sort_unstable();
        let known = catalog
            .subworkflows
            .into_iter()
            .map(|((workflow_id, version), info)| KnownVersion {
                workflow_id,
                version,
                info,
            })
            .collect();
        Ok(EditorPage {
            workflow,
            agents,
            versions,
            choices,
            known,
        })
    })
    .await
}

/// A new workflow from an export file's text (an unknown `schema_version` is refused with the
/// reason); the browser goes on to its editor.
#[server(endpoint = "workflows/import")]
pub async fn import_workflow(export: String) -> Result<WorkflowId, AppError> {
    use super::ssr::{context, current_user, run};
    run(async {
        let raw: serde_json::Value = serde_json::from_str(&export).map_err(|e| {
            AppError::invalid(format!("the export is not JSON: {e}")).with_field("export")
        })?;
        let me = current_user().await?.into();
        let detail = crate::commands::workflows::import(&context()?.pool, &me, &raw).await?;
        leptos_axum::redirect(&format!("/workflows/{}", detail.id));
        Ok(detail.id)
    })
    .await
}

/// A workflow's runs, newest first; `status` blank for all.
#[server(endpoint = "workflows/runs", input = GetUrl)]
pub async fn list_runs(
    id: WorkflowId,
    #[server(default)] status: String,
) -> Result<Vec<RunSummary>, AppError> {
    use super::ssr::{context, run};
    use crate::domain::run::RunStatus;
    run(async {
        let status = match status.trim() {
            "" => None,
            s => Some(
                s.parse::<RunStatus>()
                    .map_err(|e| AppError::invalid(format!("status: {e}")).with_field("status"))?,
            ),
        };
        let pool = &context()?.pool;
        Ok(crate::db::workflow_runs::list(pool, id, status, 200, None).await?)
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

/// Starts a run of the workflow's newest version; `inputs` is a JSON object (blank: none).
#[server(endpoint = "workflows/run")]
pub async fn start_run(
    id: WorkflowId,
    inputs: String,
) -> Result<crate::domain::ids::RunId, AppError> {
    use super::ssr::{context, current_user, run};
    run(async {
        let inputs: serde_json::Map<String, serde_json::Value> = if inputs.trim().is_empty() {
            serde_json::Map::new()
        } else {
            serde_json::from_str(&inputs).map_err(|e| {
                AppError::invalid(format!("the inputs are not a JSON object: {e}"))
                    .with_field("inputs")
            })?
        };
        let me = current_user().await?.into();
        Ok(crate::commands::workflows::run(&context()?.pool, &me, id, None, &inputs).await?)
    })
    .await
}

#[server(endpoint = "runs/get", input = GetUrl)]
pub async fn get_run(
    id: crate::domain::ids::RunId,
) -> Result<crate::domain::workflow::RunDetail, AppError> {
    use super::ssr::{context, run};
    run(async {
        let mut conn = context()?.pool.acquire().await?;
        crate::db::workflow_runs::get(&mut conn, id)
            .await?
            .ok_or_else(|| AppError::new(super::ErrorKind::NotFound, "no such workflow run"))
    })
    .await
}

/// Cancels a run from the canvas.
#[server(endpoint = "runs/cancel")]
pub async fn cancel_run(run_id: crate::domain::ids::RunId) -> Result<(), AppError> {
    use super::ssr::{context, current_user, run};
    run(async {
        let me = current_user().await?.into();
        Ok(crate::commands::cancel_task(&context()?.pool, &me, run_id).await?)
    })
    .await
}

/// Retries a failed or blocked node of a run (a rejected approval asks again) from the canvas.
#[server(endpoint = "runs/retry")]
pub async fn retry_run_node(
    run_id: crate::domain::ids::RunId,
    key: String,
) -> Result<(), AppError> {
    use super::ssr::{context, current_user, run};
    run(async {
        let me = current_user().await?.into();
        crate::commands::workflows::retry_node(&context()?.pool, &me, run_id, &key).await?;
        Ok(())
    })
    .await
}

/// Approves or rejects a waiting approval node from the canvas.
#[server(endpoint = "runs/decide")]
pub async fn decide_approval(
    run_id: crate::domain::ids::RunId,
    key: String,
    approve: bool,
    comment: String,
) -> Result<(), AppError> {
    use super::ssr::{context, current_user, run};
    run(async {
        let me = current_user().await?.into();
        let comment = Some(comment.as_str()).filter(|c| !c.trim().is_empty());
        Ok(crate::commands::workflows::decide(
            &context()?.pool,
            &me,
            run_id,
            &key,
            approve,
            comment,
        )
        .await?)
    })
    .await
}
