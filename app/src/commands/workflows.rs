//! Workflow commands shared by server functions and REST: create, save a version, instantiate
//! a template, save as template, import, validate. Saving never requires a valid graph (authors
//! save work in progress); the version records what validation found.

use super::{CommandError, invalid};
use crate::auth::require_role;
use crate::db::events;
use crate::db::workflow_runs;
use crate::db::workflows::{self, NewVersion};
use crate::domain::account::{Actor, Role};
use crate::domain::ids::{NodeId, RunId, WorkflowId};
use crate::domain::workflow::{
    Catalog, Definition, Export, Issue, MAX_NAME, MAX_TEXT, SCHEMA_VERSION, Step, SubworkflowInfo,
    WorkflowDetail, builtin_templates, check_inputs, validate,
};
use crate::domain::{stored_json, text};
use sqlx::{PgConnection, PgPool};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// How deep sub-workflows may nest when their containment is resolved.
const MAX_NESTING: usize = 16;

/// A workflow version, as sub-workflow steps name it.
type VersionKey = (Uuid, i32);

/// A workflow as a person writes it: name, description and the graph.
#[derive(Clone, Debug)]
pub struct Draft {
    pub name: String,
    pub description: String,
    pub definition: Definition,
    pub message: String,
}

fn parse_name(raw: &str) -> Result<String, CommandError> {
    text::one_line("name", raw, MAX_NAME).map_err(invalid("name"))
}

fn parse_description(raw: &str) -> Result<String, CommandError> {
    text::prose("description", raw.trim(), MAX_TEXT).map_err(invalid("description"))
}

fn parse_message(raw: &str) -> Result<String, CommandError> {
    text::prose("message", raw.trim(), 1000).map_err(invalid("message"))
}

/// Refuses what `jsonb` would not give back unchanged (NUL, numbers past f64's exact range)
/// before validation would only note it.
fn refuse_unstorable(
    field: &'static str,
    value: &impl serde::Serialize,
) -> Result<(), CommandError> {
    let value = serde_json::to_value(value).map_err(|e| CommandError::Invalid {
        field,
        reason: e.to_string(),
    })?;
    stored_json::check(&value).map_err(|reason| CommandError::Invalid { field, reason })
}

/// What a definition may name right now: the capabilities, the live agents' names, and the
/// sub-workflow versions it runs with everything they run in turn.
pub async fn catalog(
    conn: &mut PgConnection,
    workflow_id: Option<WorkflowId>,
    def: &Definition,
) -> Result<Catalog, sqlx::Error> {
    catalog_with(conn, workflow_id, sub_steps(def)).await
}

/// The catalog for a definition being edited: what [`catalog`] finds for it, and the newest
/// version of each of the `others` it may come to run as a sub-workflow.
pub async fn editor_catalog(
    conn: &mut PgConnection,
    workflow_id: WorkflowId,
    def: &Definition,
    others: &[(WorkflowId, i32)],
) -> Result<Catalog, sqlx::Error> {
    let mut roots = sub_steps(def);
    roots.extend(others.iter().map(|(id, version)| (id.0, *version)));
    catalog_with(conn, Some(workflow_id), roots).await
}

/// The catalog with the sub-workflow versions `roots` and everything they run in turn.
async fn catalog_with(
    conn: &mut PgConnection,
    workflow_id: Option<WorkflowId>,
    roots: Vec<VersionKey>,
) -> Result<Catalog, sqlx::Error> {
    let mut catalog = Catalog::standard();
    catalog.agents = sqlx::query_scalar!("select name from agents where state <> 'terminated'")
        .fetch_all(&mut *conn)
        .await?;
    catalog.workflow_id = workflow_id.map(|w| w.0);
    // Load referenced versions level by level; remember what each runs directly.
    let mut direct: HashMap<VersionKey, (Definition, Vec<VersionKey>)> = HashMap::new();
    let mut frontier = roots;
    for _ in 0..MAX_NESTING {
        frontier.retain(|k| !direct.contains_key(k));
        frontier.sort_unstable();
        frontier.dedup();
        if frontier.is_empty() {
            break;
        }
        let found = workflows::definitions(&mut *conn, &frontier).await?;
        frontier = Vec::new();
        for (id, version, d) in found {
            let subs = sub_steps(&d);
            frontier.extend(subs.iter().copied());
            direct.insert((id, version), (d, subs));
        }
    }
    for (key, (d, _)) in &direct {
        // Everything this version runs, at any depth (cycles among stored versions end).
        let mut contains = HashSet::new();
        let mut stack: Vec<VersionKey> = direct[key].1.clone();
        while let Some(k) = stack.pop() {
            if contains.insert(k.0)
                && let Some((_, next)) = direct.get(&k)
            {
                stack.extend(next.iter().copied());
            }
        }
        catalog.subworkflows.insert(
            *key,
            SubworkflowInfo {
                inputs: d.inputs.clone(),
                contains: contains.into_iter().collect(),
            },
        );
    }
    Ok(catalog)
}

fn sub_steps(def: &Definition) -> Vec<VersionKey> {
    def.nodes
        .iter()
        .filter_map(|n| match &n.step {
            Step::Workflow {
                workflow_id,
                version,
                ..
            } => Some((*workflow_id, *version)),
            _ => None,
        })
        .collect()
}

/// Validates a definition (stored as `workflow_id`, or unsaved) against the live catalog.
pub async fn check(
    pool: &PgPool,
    workflow_id: Option<WorkflowId>,
    def: &Definition,
) -> Result<Vec<Issue>, CommandError> {
    let mut conn = pool.acquire().await?;
    let catalog = catalog(&mut conn, workflow_id, def).await?;
    Ok(validate(def, &catalog))
}

/// Creates a workflow (or a template) as version 1.
pub async fn create(
    pool: &PgPool,
    actor: &Actor,
    draft: Draft,
    is_template: bool,
) -> Result<WorkflowDetail, CommandError> {
    require_role(actor, Role::Member)?;
    let name = parse_name(&draft.name)?;
    let description = parse_description(&draft.description)?;
    let message = parse_message(&draft.message)?;
    refuse_unstorable("definition", &draft.definition)?;
    let mut tx = pool.begin().await?;
    events::act_as(&mut tx, actor).await?;
    let catalog = catalog(&mut tx, None, &draft.definition).await?;
    let issues = validate(&draft.definition, &catalog);
    let first = NewVersion {
        definition: &draft.definition,
        message: &message,
        issues: &issues,
    };
    let id = workflows::create(
        &mut tx,
        &name,
        &description,
        is_template,
        first,
        Some(actor.id.0),
    )
    .await?;
    let detail = workflows::get(&mut *tx, id, None).await?;
    tx.commit().await?;
    Ok(detail)
}

/// A save: the version it is based on and what changes (name and description stay when absent).
#[derive(Clone, Debug)]
pub struct Save {
    pub base_version: i32,
    pub name: Option<String>,
    pub description: Option<String>,
    pub definition: Definition,
    pub message: String,
}

/// Saves a new version on top of `base_version`; a stale base is a conflict naming the newer
/// version.
pub async fn save(
    pool: &PgPool,
    actor: &Actor,
    id: WorkflowId,
    save: Save,
) -> Result<WorkflowDetail, CommandError> {
    require_role(actor, Role::Member)?;
    let name = save.name.as_deref().map(parse_name).transpose()?;
    let description = save
        .description
        .as_deref()
        .map(parse_description)
        .transpose()?;
    let message = parse_message(&save.message)?;
    refuse_unstorable("definition", &save.definition)?;
    let mut tx = pool.begin().await?;
    events::act_as(&mut tx, actor).await?;
    let catalog = catalog(&mut tx, Some(id), &save.definition).await?;
    let issues = validate(&save.definition, &catalog);
    let next = NewVersion {
        definition: &save.definition,
        message: &message,
        issues: &issues,
    };
    let labels = (name.as_deref(), description.as_deref());
    workflows::save(
        &mut tx,
        id,
        save.base_version,
        labels,
        next,
        Some(actor.id.0),
    )
    .await?;
    let detail = workflows::get(&mut *tx, id, None).await?;
    tx.commit().await?;
    Ok(detail)
}

/// A new workflow from a template: a built-in one by slug, or a saved template by id.
pub async fn instantiate(
    pool: &PgPool,
    actor: &Actor,
    template: &str,
    name: Option<&str>,
    description: Option<&str>,
    message: Option<&str>,
) -> Result<WorkflowDetail, CommandError> {
    require_role(actor, Role::Member)?;
    let (default_name, description_default, definition) =
        if let Some(b) = builtin_templates().into_iter().find(|t| t.slug == template) {
            (b.export.name, b.export.description, b.export.definition)
        } else {
            let unknown = || CommandError::Invalid {
                field: "from_template",
                reason: format!(
                    "no template '{}' (a built-in slug or a template's id)",
                    template.chars().take(64).collect::<String>()
                ),
            };
            let id = template.parse::<Uuid>().map_err(|_| unknown())?;
            // A well-formed id of nothing is a 404, as for any other reference.
            let t = workflows::get(pool, WorkflowId(id), None).await?;
            if !t.is_template {
                return Err(CommandError::Conflict(
                    "that workflow is not a template: save it as one first",
                ));
            }
            (t.name, t.description, t.definition)
        };
    let draft = Draft {
        name: name.map_or(default_name, str::to_owned),
        // A description given with the template replaces the template's.
        description: description.map_or(description_default, str::to_owned),
        definition,
        message: message
            .filter(|m| !m.trim().is_empty())
            .map_or_else(|| format!("from template {template}"), str::to_owned),
    };
    create(pool, actor, draft, false).await
}

/// Saves a workflow's newest version as a new template.
pub async fn save_as_template(
    pool: &PgPool,
    actor: &Actor,
    id: WorkflowId,
    name: Option<&str>,
) -> Result<WorkflowDetail, CommandError> {
    let source = workflows::get(pool, id, None).await?;
    let draft = Draft {
        name: name.map_or_else(|| format!("{} (template)", source.name), str::to_owned),
        description: source.description,
        definition: source.definition,
        message: format!("template of workflow {id} version {}", source.version),
    };
    create(pool, actor, draft, true).await
}

/// The export of a version: what [`import`] reads back.
pub fn export(detail: &WorkflowDetail) -> Export {
    Export {
        schema_version: SCHEMA_VERSION,
        name: detail.name.clone(),
        description: detail.description.clone(),
        definition: detail.definition.clone(),
    }
}

/// A new workflow from an export, refusing a schema version this build does not read.
pub async fn import(
    pool: &PgPool,
    actor: &Actor,
    raw: &serde_json::Value,
) -> Result<WorkflowDetail, CommandError> {
    let export = Export::parse(raw).map_err(|reason| CommandError::Invalid {
        field: if reason.contains("schema_version") {
            "schema_version"
        } else {
            "definition"
        },
        reason,
    })?;
    let draft = Draft {
        name: export.name,
        description: export.description,
        definition: export.definition,
        message: "imported".into(),
    };
    create(pool, actor, draft, false).await
}

/// Starts a run of a workflow version (the newest unless given) with `inputs`: the version is
/// validated against the fleet as it is now and the inputs against its declarations, and
/// every issue is returned at once.
pub async fn run(
    pool: &PgPool,
    actor: &Actor,
    id: WorkflowId,
    version: Option<i32>,
    inputs: &serde_json::Map<String, serde_json::Value>,
) -> Result<RunId, CommandError> {
    require_role(actor, Role::Member)?;
    refuse_unstorable("inputs", inputs)?;
    let mut tx = pool.begin().await?;
    events::act_as(&mut tx, actor).await?;
    let wf = workflows::get(&mut *tx, id, version).await?;
    if wf.is_template {
        return Err(CommandError::Conflict(
            "a template is not run: create a workflow from it first",
        ));
    }
    let catalog = catalog(&mut tx, Some(id), &wf.definition).await?;
    let mut issues = validate(&wf.definition, &catalog);
    // A tool step calling run_command runs a shell command as the workflow's author wrote it:
    // only an admin may start that, as only an admin may give an agent the tool.
    if wf.definition.nodes.iter().any(
        |n| matches!(&n.step, Step::Tool { tool, .. } if tool == crate::domain::agent::ADMIN_TOOL),
    ) {
        require_role(actor, Role::Admin)?;
    }
    let inputs = match check_inputs(&wf.definition.inputs, inputs) {
        Ok(inputs) => inputs,
        Err(more) => {
            issues.extend(more);
            serde_json::Map::new()
        }
    };
    if !issues.is_empty() {
        return Err(CommandError::Issues(issues));
    }
    let agents = workflow_runs::agents_by_name(&mut tx).await?;
    let run = workflow_runs::start(&mut tx, &wf, &inputs, &agents, Some(actor.id.0), None).await?;
    tx.commit().await?;
    Ok(run)
}

/// Approves or rejects a waiting approval node as `actor` (members and admins).
pub async fn decide(
    pool: &PgPool,
    actor: &Actor,
    run: RunId,
    key: &str,
    approve: bool,
    comment: Option<&str>,
) -> Result<(), CommandError> {
    require_role(actor, Role::Member)?;
    let comment = comment
        .map(|c| text::prose("comment", c.trim(), 2000).map_err(invalid("comment")))
        .transpose()?
        .filter(|c| !c.is_empty());
    let mut tx = pool.begin().await?;
    events::act_as(&mut tx, actor).await?;
    workflow_runs::decide(&mut tx, run, key, approve, comment.as_deref(), actor.id.0).await?;
    tx.commit().await?;
    Ok(())
}

/// Retries a failed or blocked node of a run by its key.
pub async fn retry_node(
    pool: &PgPool,
    actor: &Actor,
    run: RunId,
    key: &str,
) -> Result<NodeId, CommandError> {
    require_role(actor, Role::Member)?;
    let mut tx = pool.begin().await?;
    events::act_as(&mut tx, actor).await?;
    let node = workflow_runs::node_id(&mut tx, run, key).await?;
    crate::db::runs::retry_node(&mut tx, node).await?;
    tx.commit().await?;
    Ok(node)
}
