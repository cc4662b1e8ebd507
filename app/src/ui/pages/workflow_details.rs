//! The editor's side panel: the selected node's step and the conditions on its outgoing edges,
//! edited through the reducer's actions (so every edit is one undo step), and the node's state
//! in the open run.

use crate::api::AppError;
use crate::api::workflows::SubworkflowChoice;
use crate::domain::agent::{CAPABILITIES, TOOLS};
use crate::domain::ids::RunId;
use crate::domain::run::NodeStatus;
use crate::domain::workflow::editor::{Action, NodeKind};
use crate::domain::workflow::{Condition, OPS, RunNode, Step, upstream};
use crate::ui::pages::workflow_editor::Store;
use leptos::prelude::*;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// The selected node's kind and fields, the references its templates may use, and its outgoing
/// edges' conditions.
#[component]
pub fn Details(
    store: Store,
    /// The fleet's agents, which an agent step may name instead of a capability.
    agents: Vec<String>,
    /// The other workflows, which a sub-workflow step may run.
    choices: Vec<SubworkflowChoice>,
) -> impl IntoView {
    let agents = StoredValue::new(agents);
    let choices = StoredValue::new(choices);
    // A sub-workflow step running a choice's newest version, keeping `inputs`.
    let run_choice = move |id: &str, inputs: Map<String, Value>| {
        choices.with_value(|cs| {
            cs.iter()
                .find(|c| c.id.0.to_string() == id)
                .map(|c| Step::Workflow {
                    workflow_id: c.id.0,
                    version: c.version,
                    inputs,
                })
        })
    };
    // Its key and step from the graph without places: dragging the node does not redraw it.
    let chosen = Memo::new(move |_| {
        let key = store
            .selection
            .with(|s| (s.len() == 1).then(|| s.first().cloned()))??;
        store
            .graph
            .with(|g| g.nodes.iter().find(|n| n.key == key).cloned())
    });
    // Why the last edit in the panel was not applied (JSON that does not parse, a bad pattern).
    let refused = RwSignal::new(None::<String>);
    let step_fields = move || {
        let Some(node) = chosen.get() else {
            return view! { <p class="muted">"Select a node to edit it."</p> }.into_any();
        };
        let key = node.key.clone();
        let update = move |step: Step| {
            refused.set(None);
            store.apply(Action::UpdateStep {
                key: key.clone(),
                step,
            })
        };
        let kind = {
            let (step, update) = (node.step.clone(), update.clone());
            let current = node.step.kind();
            view! {
                <label>"Kind"
                    <select data-testid="kind" on:change=move |ev| {
                        let name = event_target_value(&ev);
                        let first = choices.with_value(|cs| cs.first().map(|c| c.id.0.to_string()));
                        let step = match NodeKind::parse(&name) {
                            Some(kind) => Some(kind.convert(&step)),
                            None if name == "workflow" => first.and_then(|id| run_choice(&id, Map::new())),
                            None => None,
                        };
                        if let Some(step) = step {
                            update(step);
                        }
                    }>
                        {NodeKind::ALL.iter().map(|k| view! {
                            <option value=k.as_str() selected=k.as_str() == current>{k.as_str()}</option>
                        }).collect_view()}
                        {(current == "workflow" || choices.with_value(|cs| !cs.is_empty())).then(|| view! {
                            <option value="workflow" selected=current == "workflow">"sub-workflow"</option>
                        })}
                    </select>
                </label>
            }
        };
        let fields = match node.step.clone() {
            Step::Agent { capability, agent, prompt } => {
                let (c2, a2, p2) = (capability.clone(), agent.clone(), prompt.clone());
                let (c3, p3) = (capability.clone(), prompt.clone());
                let update2 = update.clone();
                let update3 = update.clone();
                view! {
                    <h2>{format!("{} (agent step)", node.key)}</h2>
                    <label>"Capability"
                        <select data-testid="capability" on:change=move |ev| update(Step::Agent {
                            capability: Some(event_target_value(&ev)), agent: None, prompt: p2.clone() })>
                            <option value="" disabled=true selected=c2.is_none()>"— (a named agent runs it)"</option>
                            {CAPABILITIES.iter().map(|c| view! {
                                <option value=*c selected=c2.as_deref() == Some(*c)>{*c}</option>
                            }).collect_view()}
                        </select>
                    </label>
                    <label>"Or a named agent"
                        <select data-testid="agent" on:change=move |ev| {
                            let name = event_target_value(&ev);
                            update3(if name.is_empty() {
                                Step::Agent {
                                    capability: c3.clone().or_else(|| CAPABILITIES.first().map(|c| (*c).to_owned())),
                                    agent: None,
                                    prompt: p3.clone(),
                                }
                            } else {
                                Step::Agent { capability: None, agent: Some(name), prompt: p3.clone() }
                            });
                        }>
                            <option value="" selected=agent.is_none()>"any agent with the capability"</option>
                            {agents.get_value().into_iter().map(|a| {
                                let chosen = agent.as_deref() == Some(a.as_str());
                                view! { <option value=a.clone() selected=chosen>{a.clone()}</option> }
                            }).collect_view()}
                        </select>
                    </label>
                    <label>"Prompt (use {{inputs.name}} and {{nodes.key.output}})"
                        <textarea rows="6" data-testid="prompt" prop:value=prompt
                            on:change=move |ev| update2(Step::Agent {
                                capability: c2.clone(), agent: a2.clone(), prompt: event_target_value(&ev) })>
                        </textarea>
                    </label>
                }.into_any()
            }
            Step::Approval { prompt } => view! {
                <h2>{format!("{} (approval)", node.key)}</h2>
                <label>"What the approver decides"
                    <textarea rows="4" data-testid="prompt" prop:value=prompt
                        on:change=move |ev| update(Step::Approval { prompt: event_target_value(&ev) })>
                    </textarea>
                </label>
            }.into_any(),
            Step::Tool { tool, arguments } => {
                let (t2, args2) = (tool.clone(), arguments.clone());
                let update2 = update.clone();
                view! {
                    <h2>{format!("{} (tool step)", node.key)}</h2>
                    <label>"Tool"
                        <select data-testid="tool" on:change=move |ev| update(Step::Tool {
                            tool: event_target_value(&ev), arguments: args2.clone() })>
                            {TOOLS.iter().map(|t| view! {
                                <option value=*t selected=tool == *t>{*t}</option>
                            }).collect_view()}
                        </select>
                    </label>
                    <label>"Arguments (a JSON object; string values are templates)"
                        <textarea rows="5" data-testid="arguments"
                            prop:value=Value::Object(arguments).to_string()
                            on:change=move |ev| match json_object(&event_target_value(&ev)) {
                                Ok(arguments) => update2(Step::Tool { tool: t2.clone(), arguments }),
                                Err(e) => refused.set(Some(format!("arguments: {e}"))),
                            }>
                        </textarea>
                    </label>
                }.into_any()
            }
            Step::Workflow { workflow_id, version, inputs } => {
                let inputs2 = inputs.clone();
                let inputs3 = inputs.clone();
                let update2 = update.clone();
                let update3 = update.clone();
                let listed = choices.with_value(|cs| cs.iter().any(|c| c.id.0 == workflow_id));
                let set_version = move |text: String| match text.parse::<i32>() {
                    Ok(version) if version > 0 => update(Step::Workflow {
                        workflow_id,
                        version,
                        inputs: inputs2.clone(),
                    }),
                    _ => refused.set(Some("the version is a whole number from 1".into())),
                };
                view! {
                    <h2>{format!("{} (sub-workflow)", node.key)}</h2>
                    <label>"Workflow it runs"
                        <select data-testid="sub-workflow" on:change=move |ev| {
                            if let Some(step) = run_choice(&event_target_value(&ev), inputs3.clone()) {
                                update3(step);
                            }
                        }>
                            {(!listed).then(|| view! {
                                <option value=workflow_id.to_string() selected=true>{workflow_id.to_string()}</option>
                            })}
                            {choices.get_value().into_iter().map(|c| {
                                let chosen = c.id.0 == workflow_id;
                                view! { <option value=c.id.0.to_string() selected=chosen>{c.name}</option> }
                            }).collect_view()}
                        </select>
                    </label>
                    <label>"Version it runs"
                        <input type="number" min="1" data-testid="sub-version" prop:value=version
                            on:change=move |ev| set_version(event_target_value(&ev)) />
                    </label>
                    <label>"Its inputs (a JSON object; string values are templates)"
                        <textarea rows="4" data-testid="sub-inputs"
                            prop:value=Value::Object(inputs).to_string()
                            on:change=move |ev| match json_object(&event_target_value(&ev)) {
                                Ok(inputs) => update2(Step::Workflow { workflow_id, version, inputs }),
                                Err(e) => refused.set(Some(format!("inputs: {e}"))),
                            }>
                        </textarea>
                    </label>
                }.into_any()
            }
        };
        view! { {kind} {fields} <References store key=node.key.clone() /> }.into_any()
    };
    // Type-erased: the panel's nested view types otherwise outgrow the compiler's depth limit.
    view! {
        {step_fields}
        {move || chosen.get().map(|n| view! { <EdgeConditions store key=n.key refused /> })}
        {move || refused.get().map(|e| view! { <p class="error" data-testid="refused">{e}</p> })}
    }
    .into_any()
}

/// What the node's templates may reference: the declared inputs and the nodes upstream of it.
#[component]
fn References(store: Store, key: String) -> impl IntoView {
    let names = Memo::new(move |_| {
        store.graph.with(|g| {
            let inputs = g
                .inputs
                .iter()
                .map(|i| format!("{{{{inputs.{}}}}}", i.name));
            let nodes = upstream(g, &key)
                .into_iter()
                .map(|k| format!("{{{{nodes.{k}.output}}}}"));
            inputs.chain(nodes).collect::<Vec<_>>()
        })
    });
    view! {
        <p class="muted" data-testid="references">
            {move || {
                let names = names.get();
                if names.is_empty() {
                    "Nothing to reference yet: declare inputs or connect steps above this one.".to_owned()
                } else {
                    format!("It may reference: {}", names.join(" "))
                }
            }}
        </p>
    }
}

/// A JSON object from the panel's text.
fn json_object(text: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("must be a JSON object".into()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

/// A condition as its row's fields hold it, applied when it checks.
#[derive(Clone, Debug, Default)]
struct ConditionFields {
    op: String,
    text: String,
    equals: String,
    negate: bool,
}

/// A condition row per outgoing edge of `key`: the operator (or none), its text, the JSON a
/// path must equal, and "else" (negate).
#[component]
fn EdgeConditions(store: Store, key: String, refused: RwSignal<Option<String>>) -> impl IntoView {
    let edges = Memo::new(move |_| {
        store.edges.with(|edges| {
            edges
                .iter()
                .enumerate()
                .filter(|(_, e)| e.from == key)
                .map(|(i, e)| (i, e.to.clone(), e.condition.clone()))
                .collect::<Vec<_>>()
        })
    });
    move || {
        let rows = edges.get();
        if rows.is_empty() {
            return None;
        }
        Some(view! {
            <h3>"Conditions on its edges"</h3>
            {rows.into_iter().map(|(index, to, condition)| {
                let (op, text, equals) = condition
                    .as_ref()
                    .map(|c| { let (o, t, e) = c.parts(); (o.to_owned(), t, e) })
                    .unwrap_or_default();
                let negate = condition.as_ref().is_some_and(|c| c.negate);
                let fields = RwSignal::new(ConditionFields {
                    op: op.clone(),
                    text: text.clone(),
                    equals: equals.clone(),
                    negate,
                });
                let target = StoredValue::new(to.clone());
                let apply = move |change: &dyn Fn(&mut ConditionFields)| {
                    fields.update(|f| change(f));
                    let f = fields.get_untracked();
                    match Condition::from_parts(&f.op, &f.text, &f.equals, f.negate) {
                        Ok(condition) => {
                            refused.set(None);
                            store.apply(Action::SetCondition { index, condition });
                        }
                        Err(e) => refused.set(Some(format!("the edge to {}: {e}", target.get_value()))),
                    }
                };
                let is_path = move || fields.with(|f| f.op == "json_path");
                view! {
                    <fieldset class="condition" data-testid=format!("condition-{to}")>
                        <legend>{format!("→ {to}")}</legend>
                        <select data-testid="op" on:change=move |ev| {
                            let v = event_target_value(&ev);
                            apply(&|f| f.op = v.clone());
                        }>
                            <option value="" selected=op.is_empty()>"always"</option>
                            {OPS.iter().map(|o| view! {
                                <option value=*o selected=op == *o>{o.replace('_', " ")}</option>
                            }).collect_view()}
                        </select>
                        <input data-testid="op-text" placeholder="value, pattern or $.path" prop:value=text
                            on:change=move |ev| { let v = event_target_value(&ev); apply(&|f| f.text = v.clone()); } />
                        <input data-testid="op-equals" placeholder="equals (JSON)" prop:value=equals
                            class:hidden=move || !is_path()
                            on:change=move |ev| { let v = event_target_value(&ev); apply(&|f| f.equals = v.clone()); } />
                        <label class="check">
                            <input type="checkbox" data-testid="negate" prop:checked=negate
                                on:change=move |ev| { let v = event_target_checked(&ev); apply(&|f| f.negate = v); } />
                            "else (negate)"
                        </label>
                    </fieldset>
                }
            }).collect_view()}
        })
    }
}

/// A run node's state as the overlay names it.
pub fn overlay_state(n: &RunNode) -> String {
    if n.waiting_for_approval {
        "waiting_for_approval".into()
    } else {
        n.status.as_str().to_owned()
    }
}

/// Who decided an approval, how and when.
fn decision(n: &RunNode) -> Option<String> {
    let how = n.decision.as_deref()?;
    let who = n.decided_by.as_deref().unwrap_or("someone");
    let when = n
        .decided_at
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    Some(format!("{how} by {who} {when}").trim_end().to_owned())
}

/// The selected node in the open run: its state, output or error, tokens, the child run of a
/// sub-workflow, the decision buttons while it waits for approval, and Retry once it failed
/// (a rejected approval asks again) or was blocked.
#[component]
pub fn RunPanel(
    store: Store,
    run_nodes: Memo<HashMap<String, RunNode>>,
    run_id: RwSignal<Option<RunId>>,
    decide: leptos::prelude::Action<(RunId, String, bool), Result<(), AppError>>,
    retry: leptos::prelude::Action<(RunId, String), Result<(), AppError>>,
) -> impl IntoView {
    let node = Memo::new(move |_| {
        let key = store
            .selection
            .with(|s| (s.len() == 1).then(|| s.first().cloned()))??;
        run_nodes.with(|r| r.get(&key).cloned())
    });
    move || {
        let n = node.get()?;
        let run = run_id.get()?;
        let key = n.key.clone();
        let key2 = key.clone();
        let key3 = key.clone();
        let retryable = matches!(n.status, NodeStatus::Failed | NodeStatus::Blocked);
        Some(view! {
            <h2>"In this run"</h2>
            <p data-testid="node-state">{overlay_state(&n).replace('_', " ")}</p>
            {n.output.clone().map(|o| view! { <pre class="result" data-testid="node-output">{o}</pre> })}
            {n.error.clone().map(|e| view! { <p class="error">{e}</p> })}
            <p class="muted">{format!("{} tokens, attempt {}", n.tokens, n.attempt)}</p>
            {decision(&n).map(|d| view! { <p class="muted" data-testid="decision">{d}</p> })}
            {n.child_run.map(|c| view! { <p class="muted" data-testid="child-run">{format!("Child run {c}")}</p> })}
            {n.waiting_for_approval.then(|| view! {
                <div class="buttons">
                    <button data-testid="approve" on:click=move |_| { decide.dispatch((run, key.clone(), true)); }>"Approve"</button>
                    <button class="danger" data-testid="reject" on:click=move |_| { decide.dispatch((run, key2.clone(), false)); }>"Reject"</button>
                </div>
            })}
            {retryable.then(|| view! {
                <button data-testid="retry" on:click=move |_| { retry.dispatch((run, key3.clone())); }>"Retry"</button>
            })}
        })
    }
}
