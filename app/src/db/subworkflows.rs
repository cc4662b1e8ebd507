//! Sub-workflow nodes: the advancer starts a child run of the pinned version for the node, which
//! holds no agent, slot or lease while it waits; the child's end completes the node (its
//! output is the child's outputs by key, as JSON) or fails it, and cancelling the parent
//! cancels the child. A child whose parent node has already ended changes nothing upstream.

use super::events::{self, NewEvent};
use super::runs;
use super::workflow_runs::{self, Gated, release_dependents};
use super::workflows;
use crate::domain::event::EventKind;
use crate::domain::ids::{NodeId, RunId, WorkflowId};
use crate::domain::stored_json;
use crate::domain::workflow::{InputType, check_inputs};
use serde_json::{Map, Value, json};
use sqlx::PgConnection;

/// Starts the child run of the sub-workflow node `g` with its rendered `inputs`, and marks the
/// node running. `Ok(Err(reason))`: the child could not start (the version is gone or the
/// inputs do not fit it); the caller fails the node with the reason.
pub async fn start_child(
    conn: &mut PgConnection,
    g: &Gated,
    workflow: WorkflowId,
    version: i32,
    inputs: &Map<String, Value>,
) -> Result<Result<RunId, String>, sqlx::Error> {
    let wf = match workflows::get(&mut *conn, workflow, Some(version)).await {
        Ok(wf) => wf,
        Err(workflows::WorkflowDbError::Db(e)) => return Err(e),
        Err(e) => return Ok(Err(format!("the sub-workflow cannot run: {e}"))),
    };
    let inputs = typed(&wf.definition.inputs, inputs);
    // Upstream outputs are model text: a NUL rendered in cannot be stored in jsonb.
    if let Err(why) = stored_json::check(&Value::Object(inputs.clone())) {
        return Ok(Err(format!("the rendered inputs cannot be stored: {why}")));
    }
    let inputs = match check_inputs(&wf.definition.inputs, &inputs) {
        Ok(inputs) => inputs,
        Err(issues) => {
            let why: Vec<String> = issues.into_iter().map(|i| i.message).collect();
            return Ok(Err(format!(
                "the sub-workflow '{}' v{version} refused its inputs: {}",
                wf.name,
                why.join("; ")
            )));
        }
    };
    let agents = workflow_runs::agents_by_name(&mut *conn).await?;
    let started_by = sqlx::query_scalar!("select created_by from runs where id = $1", g.run_id.0)
        .fetch_one(&mut *conn)
        .await?;
    let child =
        workflow_runs::start(&mut *conn, &wf, &inputs, &agents, started_by, Some(g.id)).await?;
    sqlx::query!(
        "update nodes set status = 'running', pending_deps = 0, ready_at = now(),
             started_at = now(), description = $2
         where id = $1",
        g.id.0,
        format!(
            "runs '{}' v{version} with {}",
            wf.name,
            Value::Object(inputs)
        )
    )
    .execute(&mut *conn)
    .await?;
    events::append(
        conn,
        NewEvent::new(EventKind::SubtaskStarted, format!("subtask/{}", g.id))
            .run(g.run_id)
            .node(g.id)
            .data(json!({ "key": g.key, "child_run": child })),
    )
    .await?;
    Ok(Ok(child))
}

/// A rendered template is text; an input declared as a number, boolean or JSON takes the
/// value that text spells when it spells one of that type.
fn typed(
    decls: &[crate::domain::workflow::InputDecl],
    given: &Map<String, Value>,
) -> Map<String, Value> {
    given
        .iter()
        .map(|(name, v)| {
            let ty = decls.iter().find(|d| &d.name == name).map(|d| d.ty);
            let v = match (ty, v) {
                (Some(ty), Value::String(s)) if ty != InputType::String => {
                    serde_json::from_str::<Value>(s.trim())
                        .ok()
                        .filter(|parsed| ty.admits(parsed))
                        .unwrap_or_else(|| v.clone())
                }
                _ => v.clone(),
            };
            (name.clone(), v)
        })
        .collect()
}

/// How a child run ended, for its parent node.
pub enum ChildEnd<'a> {
    /// Completed: its nodes' outputs by key.
    Completed(Map<String, Value>),
    Failed(&'a str),
    Cancelled,
}

/// Completes or fails `parent` (the node a child run ran for) if it is still waiting on it.
pub async fn child_ended(
    conn: &mut PgConnection,
    parent: NodeId,
    end: ChildEnd<'_>,
) -> Result<(), sqlx::Error> {
    let why = match end {
        ChildEnd::Completed(outputs) => {
            let output = Value::Object(outputs).to_string();
            let Some(run) = end_parent(conn, parent, "completed", Some(&output), None).await?
            else {
                return Ok(());
            };
            release_dependents(conn, parent).await?;
            events::append(
                conn,
                NewEvent::new(EventKind::SubtaskCompleted, format!("subtask/{parent}"))
                    .run(run)
                    .node(parent)
                    .data(json!({ "output_chars": output.chars().count() })),
            )
            .await?;
            Box::pin(runs::finish_if_done(conn, run, false)).await?;
            return Ok(());
        }
        ChildEnd::Failed(e) => format!("the sub-workflow run failed: {e}"),
        ChildEnd::Cancelled => "the sub-workflow run was cancelled".to_owned(),
    };
    if let Some(run) = end_parent(conn, parent, "failed", None, Some(&why)).await? {
        workflow_runs::failed(conn, parent, run, &why).await?;
    }
    Ok(())
}

/// Ends `parent` in `status` if it still waits on its child; answers its run.
async fn end_parent(
    conn: &mut PgConnection,
    parent: NodeId,
    status: &str,
    output: Option<&str>,
    error: Option<&str>,
) -> Result<Option<RunId>, sqlx::Error> {
    Ok(sqlx::query_scalar!(
        "update nodes set status = $2, output = $3, error = $4, finished_at = now()
         where id = $1 and status = 'running' returning run_id",
        parent.0,
        status,
        output,
        error
    )
    .fetch_optional(conn)
    .await?
    .map(RunId))
}

/// The child runs still open of the nodes `parents` (cancelled with their parent).
pub async fn open_children(
    conn: &mut PgConnection,
    parents: &[uuid::Uuid],
) -> Result<Vec<RunId>, sqlx::Error> {
    if parents.is_empty() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_scalar!(
        "select id from runs where parent_node = any($1) and status in ('pending', 'in_progress')",
        parents
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(RunId)
    .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::workflow::InputDecl;

    fn decl(name: &str, ty: InputType) -> InputDecl {
        InputDecl {
            name: name.into(),
            ty,
            required: false,
            default: None,
            description: String::new(),
        }
    }

    #[test]
    fn rendered_text_becomes_the_declared_type_when_it_spells_one() {
        let decls = [
            decl("n", InputType::Number),
            decl("b", InputType::Boolean),
            decl("s", InputType::String),
            decl("j", InputType::Json),
        ];
        let given = json!({"n": " 3 ", "b": "true", "s": "3", "j": "[1, 2]", "other": "4"});
        let out = typed(&decls, given.as_object().unwrap());
        assert_eq!(
            Value::Object(out),
            json!({"n": 3, "b": true, "s": "3", "j": [1, 2], "other": "4"})
        );
        // Text that spells no value of the type stays text, for check_inputs to refuse.
        let given = json!({"n": "three", "b": "1"});
        let out = typed(&decls, given.as_object().unwrap());
        assert_eq!(Value::Object(out), json!({"n": "three", "b": "1"}));
    }

    proptest::proptest! {
        /// Rendered text is model output: whatever it holds, typing keeps every input, changes
        /// only text given to a typed input, and never panics.
        #[test]
        fn any_rendered_inputs_are_typed_without_panicking(
            given in proptest::collection::btree_map("[a-z]{1,3}", crate::domain::workflow::tests::arbitrary_json(), 0..6),
        ) {
            let decls = ["a", "b", "c"].map(|n| decl(n, InputType::Number));
            let given: Map<String, Value> = given.into_iter().collect();
            let out = typed(&decls, &given);
            proptest::prop_assert_eq!(out.len(), given.len());
            for (k, v) in &given {
                if !v.is_string() || !decls.iter().any(|d| &d.name == k) {
                    proptest::prop_assert_eq!(&out[k], v);
                }
            }
        }
    }
}
