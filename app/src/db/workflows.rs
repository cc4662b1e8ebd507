//! The `workflows` and `workflow_versions` tables: create, save a new version against a named
//! base, list, read any version.

use super::events::{self, NewEvent};
use crate::domain::event::EventKind;
use crate::domain::ids::WorkflowId;
use crate::domain::workflow::{
    Definition, Issue, VersionSummary, WorkflowDetail, WorkflowState, WorkflowSummary,
};
use serde_json::json;
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum WorkflowDbError {
    #[error("no such workflow")]
    NotFound,
    #[error("the workflow has no version {0}")]
    VersionNotFound(i32),
    /// The save named a base that is no longer the newest version.
    #[error(
        "version {latest} was saved after version {base}: reload it and apply your changes there"
    )]
    Stale { base: i32, latest: i32 },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// One version to store: the definition, the author's note and what validation found.
pub struct NewVersion<'a> {
    pub definition: &'a Definition,
    pub message: &'a str,
    pub issues: &'a [Issue],
}

/// Stores a new workflow as version 1.
pub async fn create(
    conn: &mut PgConnection,
    name: &str,
    description: &str,
    is_template: bool,
    first: NewVersion<'_>,
    created_by: Option<Uuid>,
) -> Result<WorkflowId, WorkflowDbError> {
    let id = WorkflowId(Uuid::new_v4());
    sqlx::query!(
        "insert into workflows (id, name, description, is_template, created_by)
         values ($1, $2, $3, $4, $5)",
        id.0,
        name,
        description,
        is_template,
        created_by
    )
    .execute(&mut *conn)
    .await?;
    insert_version(conn, id, 1, &first, created_by).await?;
    events::append(
        conn,
        NewEvent::new(EventKind::WorkflowCreated, format!("workflow/{id}")).data(json!({
            "name": name,
            "version": 1,
            "is_template": is_template,
            "state": WorkflowState::of(first.issues),
        })),
    )
    .await?;
    Ok(id)
}

/// Saves a new version on top of `base`, which must be the newest, renaming it where `name`
/// or `description` is given; returns the new number.
/// Two authors saving on the same base: the second gets [`WorkflowDbError::Stale`].
pub async fn save(
    conn: &mut PgConnection,
    id: WorkflowId,
    base: i32,
    (name, description): (Option<&str>, Option<&str>),
    next: NewVersion<'_>,
    saved_by: Option<Uuid>,
) -> Result<i32, WorkflowDbError> {
    let bumped = sqlx::query_scalar!(
        "update workflows set latest_version = latest_version + 1,
             name = coalesce($3, name), description = coalesce($4, description),
             updated_at = now()
         where id = $1 and latest_version = $2 returning latest_version",
        id.0,
        base,
        name,
        description
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(version) = bumped else {
        let latest =
            sqlx::query_scalar!("select latest_version from workflows where id = $1", id.0)
                .fetch_optional(&mut *conn)
                .await?;
        return Err(match latest {
            None => WorkflowDbError::NotFound,
            Some(latest) => WorkflowDbError::Stale { base, latest },
        });
    };
    insert_version(conn, id, version, &next, saved_by).await?;
    events::append(
        conn,
        NewEvent::new(EventKind::WorkflowSaved, format!("workflow/{id}")).data(json!({
            "version": version,
            "state": WorkflowState::of(next.issues),
            "issues": next.issues.len(),
        })),
    )
    .await?;
    Ok(version)
}

async fn insert_version(
    conn: &mut PgConnection,
    id: WorkflowId,
    version: i32,
    v: &NewVersion<'_>,
    by: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into workflow_versions (workflow_id, version, definition, message, issues, created_by)
         values ($1, $2, $3, $4, $5, $6)",
        id.0,
        version,
        Json(v.definition) as _,
        v.message,
        Json(v.issues) as _,
        by
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Workflows (or templates), most recently saved first, from before `before` when paging.
pub async fn list(
    db: impl PgExecutor<'_>,
    templates: bool,
    limit: i64,
    before: Option<time::OffsetDateTime>,
) -> Result<Vec<WorkflowSummary>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select w.id, w.name, w.description, w.is_template, w.latest_version,
                  w.created_at, w.updated_at,
                  jsonb_array_length(v.definition -> 'nodes')::int8 as "nodes!",
                  v.issues = '[]'::jsonb as "ready!"
           from workflows w
           join workflow_versions v on v.workflow_id = w.id and v.version = w.latest_version
           where w.is_template = $1 and ($3::timestamptz is null or w.updated_at < $3)
           order by w.updated_at desc, w.id
           limit $2"#,
        templates,
        limit,
        before
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| WorkflowSummary {
            id: WorkflowId(r.id),
            name: r.name,
            description: r.description,
            is_template: r.is_template,
            state: WorkflowState::ready_if(r.ready),
            version: r.latest_version,
            nodes: r.nodes,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
        .collect())
}

/// A workflow with one version: the newest when `version` is `None`.
pub async fn get(
    db: impl PgExecutor<'_>,
    id: WorkflowId,
    version: Option<i32>,
) -> Result<WorkflowDetail, WorkflowDbError> {
    let row = sqlx::query!(
        r#"select w.name, w.description, w.is_template, w.latest_version, w.created_at,
                  v.version as "version?", v.message as "message?",
                  v.definition as "definition?: Json<Definition>",
                  v.issues as "issues?: Json<Vec<Issue>>", v.created_at as "saved_at?"
           from workflows w
           left join workflow_versions v
               on v.workflow_id = w.id and v.version = coalesce($2, w.latest_version)
           where w.id = $1"#,
        id.0,
        version
    )
    .fetch_optional(db)
    .await?
    .ok_or(WorkflowDbError::NotFound)?;
    let (Some(v), Some(message), Some(Json(definition)), Some(Json(issues)), Some(saved_at)) = (
        row.version,
        row.message,
        row.definition,
        row.issues,
        row.saved_at,
    ) else {
        return Err(WorkflowDbError::VersionNotFound(
            version.unwrap_or(row.latest_version),
        ));
    };
    Ok(WorkflowDetail {
        id,
        name: row.name,
        description: row.description,
        is_template: row.is_template,
        latest_version: row.latest_version,
        version: v,
        state: WorkflowState::of(&issues),
        message,
        definition,
        issues,
        created_at: row.created_at,
        saved_at,
    })
}

/// Every version of a workflow, newest first.
pub async fn versions(
    conn: &mut PgConnection,
    id: WorkflowId,
) -> Result<Vec<VersionSummary>, WorkflowDbError> {
    let exists = sqlx::query_scalar!("select 1 as \"one!\" from workflows where id = $1", id.0)
        .fetch_optional(&mut *conn)
        .await?;
    if exists.is_none() {
        return Err(WorkflowDbError::NotFound);
    }
    let rows = sqlx::query!(
        r#"select v.version, v.message, v.issues = '[]'::jsonb as "ready!", v.created_at,
                  u.username as "username?"
           from workflow_versions v left join users u on u.id = v.created_by
           where v.workflow_id = $1 order by v.version desc"#,
        id.0
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| VersionSummary {
            version: r.version,
            state: WorkflowState::ready_if(r.ready),
            message: r.message,
            saved_by: r.username,
            saved_at: r.created_at,
        })
        .collect())
}

/// The definitions of the given versions that exist, for resolving sub-workflow steps.
pub async fn definitions(
    db: impl PgExecutor<'_>,
    wanted: &[(Uuid, i32)],
) -> Result<Vec<(Uuid, i32, Definition)>, sqlx::Error> {
    let (ids, versions): (Vec<Uuid>, Vec<i32>) = wanted.iter().copied().unzip();
    let rows = sqlx::query!(
        r#"select v.workflow_id, v.version, v.definition as "definition: Json<Definition>"
           from workflow_versions v
           join unnest($1::uuid[], $2::int[]) as t(id, version)
               on v.workflow_id = t.id and v.version = t.version"#,
        &ids,
        &versions
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.workflow_id, r.version, r.definition.0))
        .collect())
}
