//! The workflow editor: a canvas over the [`EditorState`] reducer. Components here only turn
//! pointer, wheel and key events into [`Action`]s; every rule lives in the reducer and in the
//! shared validation, which run in the browser as the author draws.

use crate::api::AppError;
use crate::api::workflows::{
    EditorPage, decide_approval, get_run, get_workflow, save_workflow, start_run,
};
use crate::domain::ids::RunId;
use crate::domain::workflow::RunNode;
use crate::domain::workflow::editor::{Action, EditorState, NODE_H, NODE_W, NodeKind};
use crate::domain::workflow::{Catalog, Definition, Edge, Position, validate};
use crate::ui::components::error_note::ErrorNote;
use crate::ui::contexts::live::{Connection, use_live_events};
use crate::ui::pages::workflow_details::{Details, RunPanel, overlay_state};
use crate::ui::pages::workflow_history::{History, workflow_param};
use leptos::ev::{KeyboardEvent, PointerEvent, WheelEvent};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use std::collections::HashMap;

#[component]
pub fn WorkflowEditorPage() -> impl IntoView {
    let query = use_query_map();
    let id = workflow_param();
    // `?version=N` opens a past version; `?run=ID` opens a run's overlay.
    let version = move || {
        query
            .read()
            .get("version")
            .and_then(|v| v.parse::<i32>().ok())
    };
    let run = move || {
        query
            .read()
            .get("run")
            .and_then(|r| r.parse::<RunId>().ok())
    };
    let page = Resource::new(
        move || (id(), version()),
        |(id, version)| async move {
            match id {
                Some(id) => get_workflow(id, version).await,
                None => Err(AppError::invalid("not a workflow id")),
            }
        },
    );
    view! {
        <Title text="Workflow editor" />
        <p>
            <a href="/workflows">"← Workflows"</a>
        </p>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(p) => view! { <Editor page=p run=run() /> }.into_any(),
                    Err(e) => view! { <ErrorNote error=Signal::stored(Some(e)) /> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// What the pointer is doing on the canvas.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Gesture {
    Idle,
    Moving {
        last: Position,
    },
    Panning {
        last: Position,
    },
    Boxing {
        from: Position,
        to: Position,
    },
    Drawing,
    /// A palette item is being dragged onto the canvas.
    Adding(NodeKind),
}

/// Nodes' places and kinds by key.
type Layout = HashMap<String, (Position, &'static str)>;

/// A node's box in the minimap.
#[derive(Clone, Copy, Debug, PartialEq)]
struct MiniBox {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

/// Where edges leave a node placed at `p`.
fn out_port(p: Position) -> Position {
    Position {
        x: p.x + NODE_W / 2.0,
        y: p.y + NODE_H,
    }
}

/// Where edges enter a node placed at `p`.
fn in_port(p: Position) -> Position {
    Position {
        x: p.x + NODE_W / 2.0,
        y: p.y,
    }
}

fn port_out(s: &EditorState, key: &str) -> Option<Position> {
    let n = s.def.nodes.iter().find(|n| n.key == key)?;
    Some(out_port(n.position))
}

fn shortcut(ev: &KeyboardEvent) -> Option<Action> {
    let ctrl = ev.ctrl_key() || ev.meta_key();
    let key = ev.key();
    Some(match (ctrl, key.as_str()) {
        (false, "Delete" | "Backspace") => Action::Delete,
        (true, "z" | "Z") if ev.shift_key() => Action::Redo,
        (true, "z") => Action::Undo,
        (true, "y") => Action::Redo,
        (true, "a") => Action::SelectAll,
        (true, "c") => Action::Copy,
        (true, "v") => Action::Paste,
        (true, "d") => Action::Duplicate,
        (false, "Escape") => Action::CancelEdge,
        _ => return None,
    })
}

#[component]
fn Editor(page: EditorPage, run: Option<RunId>) -> impl IntoView {
    let wf = page.workflow;
    let workflow_id = wf.id;
    let state = RwSignal::new(EditorState::new(wf.definition.clone()));
    // A past version is saved on top of the newest: opening it and saving restores it.
    let base = RwSignal::new(wf.latest_version);
    let shown = RwSignal::new(wf.version);
    let gesture = RwSignal::new(Gesture::Idle);
    let help = RwSignal::new(false);
    let filter = RwSignal::new(String::new());
    let message = RwSignal::new(String::new());
    let catalog = StoredValue::new({
        let mut c = Catalog::standard();
        c.agents = page.agents;
        c.workflow_id = Some(workflow_id.0);
        c
    });
    // The shared validation, in the browser: issues appear as the graph changes. It reads the
    // graph without positions, so dragging a node does not validate again on every frame.
    let structure = Memo::new(move |_| {
        state.with(|s| {
            let mut def = s.def.clone();
            for n in &mut def.nodes {
                n.position = Position::default();
            }
            def
        })
    });
    let issues = Memo::new(move |_| structure.with(|d| catalog.with_value(|c| validate(d, c))));
    let apply = move |a: Action| state.update(|s| s.apply(a));
    let svg = NodeRef::<leptos::svg::Svg>::new();
    let local = move |ev: &PointerEvent| -> Position {
        let (left, top) = svg_origin(svg);
        Position {
            x: f64::from(ev.client_x()) - left,
            y: f64::from(ev.client_y()) - top,
        }
    };
    let to_canvas = move |p: Position| state.with_untracked(|s| s.view.to_canvas(p));
    let save =
        leptos::prelude::Action::new(move |(version, def, note): &(i32, Definition, String)| {
            let (version, def, note) = (*version, def.clone(), note.clone());
            async move { save_workflow(workflow_id, version, def, note).await }
        });
    Effect::new(move |_| {
        if let Some(Ok(saved)) = save.value().get() {
            base.set(saved.version);
            shown.set(saved.version);
            apply(Action::MarkSaved);
            message.set(String::new());
        }
    });
    let save_error = Signal::derive(move || save.value().get().and_then(Result::err));

    // The live overlay: a run started here, re-read on each of its events (pushed over the
    // stream, never polled) and again whenever the stream comes back, so a node that changed
    // while the socket was down is not left stale.
    let run_id = RwSignal::new(run);
    let run_inputs = RwSignal::new(default_inputs(&wf.definition));
    let start = leptos::prelude::Action::new(move |inputs: &String| {
        let inputs = inputs.clone();
        async move { start_run(workflow_id, inputs).await }
    });
    Effect::new(move |_| {
        if let Some(Ok(id)) = start.value().get() {
            run_id.set(Some(id));
        }
    });
    let decide =
        leptos::prelude::Action::new(move |(run, key, approve): &(RunId, String, bool)| {
            let (run, key, approve) = (*run, key.clone(), *approve);
            async move { decide_approval(run, key, approve, String::new()).await }
        });
    let live = use_live_events();
    let ticks = live.ticks(move |e| e.task_id.is_some() && e.task_id == run_id.get());
    let connection = live.connection;
    let run = LocalResource::new(move || {
        let (id, _, _, _) = (
            run_id.get(),
            ticks.get(),
            connection.get() == Connection::Live,
            decide.version().get(),
        );
        async move {
            match id {
                Some(id) => get_run(id).await.ok(),
                None => None,
            }
        }
    });
    let run_nodes = Memo::new(move |_| {
        run.get()
            .flatten()
            .map(|r| {
                r.nodes
                    .into_iter()
                    .map(|n| (n.key.clone(), n))
                    .collect::<HashMap<String, RunNode>>()
            })
            .unwrap_or_default()
    });
    let run_error = Signal::derive(move || {
        start
            .value()
            .get()
            .and_then(Result::err)
            .or_else(|| decide.value().get().and_then(Result::err))
    });

    let keydown = window_event_listener(leptos::ev::keydown, move |ev| {
        if crate::ui::dom::in_form_field(&ev) {
            return;
        }
        if ev.key() == "?" {
            help.update(|h| *h = !*h);
            return;
        }
        if (ev.key() == "f" || ev.key() == "F") && !ev.ctrl_key() && !ev.meta_key() {
            let (w, h) = svg_size(svg);
            apply(Action::FitToView {
                width: w,
                height: h,
            });
            return;
        }
        if let Some(a) = shortcut(&ev) {
            ev.prevent_default();
            apply(a);
        }
    });
    // Unsaved changes are not lost to an accidental navigation.
    let unload = window_event_listener(leptos::ev::beforeunload, move |ev| {
        if state.with_untracked(EditorState::dirty) {
            ev.prevent_default();
            ev.set_return_value("unsaved changes");
        }
    });
    on_cleanup(move || {
        keydown.remove();
        unload.remove();
    });

    let on_down = move |ev: PointerEvent| {
        crate::ui::dom::capture_on_canvas(&ev);
        // A node or port under the pointer took this press already (delegated events may
        // reach the canvas after them).
        if matches!(
            gesture.get_untracked(),
            Gesture::Moving { .. } | Gesture::Drawing
        ) {
            return;
        }
        let p = local(&ev);
        gesture.set(if ev.shift_key() {
            Gesture::Boxing { from: p, to: p }
        } else {
            Gesture::Panning { last: p }
        });
    };
    let on_move = move |ev: PointerEvent| {
        let p = local(&ev);
        match gesture.get_untracked() {
            Gesture::Moving { last } => {
                let zoom = state.with_untracked(|s| s.view.zoom);
                apply(Action::MoveSelection {
                    dx: (p.x - last.x) / zoom,
                    dy: (p.y - last.y) / zoom,
                });
                gesture.set(Gesture::Moving { last: p });
            }
            Gesture::Panning { last } => {
                apply(Action::Pan {
                    dx: p.x - last.x,
                    dy: p.y - last.y,
                });
                gesture.set(Gesture::Panning { last: p });
            }
            Gesture::Boxing { from, .. } => gesture.set(Gesture::Boxing { from, to: p }),
            Gesture::Drawing => {
                let at = to_canvas(p);
                let over = state.with_untracked(|s| {
                    let from = s.drawing.as_ref().map(|d| d.from.clone());
                    s.node_at(at)
                        .filter(|k| Some(*k) != from.as_deref())
                        .map(str::to_owned)
                });
                apply(Action::DragEdge { at, over });
            }
            Gesture::Idle | Gesture::Adding(_) => {}
        }
    };
    let on_up = move |ev: PointerEvent| {
        let p = local(&ev);
        match gesture.get_untracked() {
            Gesture::Moving { .. } => apply(Action::EndMove),
            Gesture::Boxing { from, to } => {
                if (from.x - to.x).abs() + (from.y - to.y).abs() < 4.0 {
                    apply(Action::ClearSelection);
                } else {
                    apply(Action::SelectBox {
                        from: to_canvas(from),
                        to: to_canvas(to),
                        additive: true,
                    });
                }
            }
            Gesture::Drawing => apply(Action::EndEdge),
            Gesture::Adding(kind) => {
                let c = to_canvas(p);
                apply(Action::AddNode {
                    kind,
                    at: Position {
                        x: c.x - NODE_W / 2.0,
                        y: c.y - NODE_H / 2.0,
                    },
                });
            }
            Gesture::Panning { .. } | Gesture::Idle => {}
        }
        gesture.set(Gesture::Idle);
    };
    let on_wheel = move |ev: WheelEvent| {
        ev.prevent_default();
        let (left, top) = svg_origin(svg);
        let at = Position {
            x: f64::from(ev.client_x()) - left,
            y: f64::from(ev.client_y()) - top,
        };
        let factor = if ev.delta_y() < 0.0 { 1.1 } else { 1.0 / 1.1 };
        apply(Action::Zoom { factor, at });
    };
    let zoom_by = move |factor: f64| {
        let (w, h) = svg_size(svg);
        apply(Action::Zoom {
            factor,
            at: Position {
                x: w / 2.0,
                y: h / 2.0,
            },
        });
    };

    let node_keys = Memo::new(move |_| {
        state.with(|s| {
            s.def
                .nodes
                .iter()
                .map(|n| n.key.clone())
                .collect::<Vec<_>>()
        })
    });
    let edge_count = Memo::new(move |_| state.with(|s| s.def.edges.len()));
    // Each node's place and kind by key, one pass per change: a node or edge looks itself up
    // here, and only what changed re-renders (a drag re-renders the dragged node and its edges).
    let layout = Memo::new(move |_| {
        state.with(|s| {
            s.def
                .nodes
                .iter()
                .map(|n| (n.key.clone(), (n.position, n.step.kind())))
                .collect::<Layout>()
        })
    });
    let edges = Memo::new(move |_| state.with(|s| s.def.edges.clone()));
    // Effects run in the browser only: the canvas says when it is live (hydrated).
    let live_canvas = RwSignal::new(false);
    Effect::new(move |_| live_canvas.set(true));
    // The canvas region within a screen's margin of the view: nodes beyond it are plain boxes.
    let near = Memo::new(move |_| {
        state.with(|s| {
            let (w, h) = svg_size(svg);
            (
                s.view.to_canvas(Position { x: -w, y: -h }),
                s.view.to_canvas(Position {
                    x: 2.0 * w,
                    y: 2.0 * h,
                }),
            )
        })
    });
    let transform = move || {
        state.with(|s| {
            format!(
                "translate({} {}) scale({})",
                s.view.x, s.view.y, s.view.zoom
            )
        })
    };

    let head = view! {
        <div class="editor-head">
            <h1>{wf.name.clone()}</h1>
            <span class="muted" data-testid="version">
                {move || format!("version {}", shown.get())}
            </span>
            {move || (shown.get() < base.get()).then(|| view! {
                <span class="warn" data-testid="past-version">
                    {format!("a past version: saving makes it version {}", base.get() + 1)}
                </span>
            })}
            <History workflow=workflow_id versions=page.versions shown />
            <span class="muted" data-testid="dirty">
                {move || if state.with(EditorState::dirty) { "unsaved changes" } else { "saved" }}
            </span>
        </div>
        <div class="toolbar">
            <button class="secondary" title="Undo (Ctrl+Z)" data-testid="undo"
                disabled=move || !state.with(EditorState::can_undo)
                on:click=move |_| apply(Action::Undo)>"Undo"</button>
            <button class="secondary" title="Redo (Ctrl+Shift+Z)" data-testid="redo"
                disabled=move || !state.with(EditorState::can_redo)
                on:click=move |_| apply(Action::Redo)>"Redo"</button>
            <button class="secondary" title="Zoom in" on:click=move |_| zoom_by(1.2)>"+"</button>
            <button class="secondary" title="Zoom out" on:click=move |_| zoom_by(1.0 / 1.2)>"−"</button>
            <button class="secondary" title="Fit to view (F)" on:click=move |_| {
                let (w, h) = svg_size(svg);
                apply(Action::FitToView { width: w, height: h });
            }>"Fit"</button>
            <button class="secondary" data-testid="layout" on:click=move |_| apply(Action::AutoLayout)>
                "Auto-layout"
            </button>
            <button class="secondary" title="Keyboard shortcuts (?)" on:click=move |_| help.update(|h| *h = !*h)>
                "?"
            </button>
            <input type="text" placeholder="What changed (optional)" aria-label="Version message"
                prop:value=move || message.get()
                on:input=move |ev| message.set(event_target_value(&ev)) />
            <button data-testid="save" disabled=move || save.pending().get() on:click=move |_| {
                let def = state.with_untracked(|s| s.def.clone());
                save.dispatch((base.get_untracked(), def, message.get_untracked()));
            }>"Save"</button>
        </div>
        <div class="toolbar">
            <input type="text" aria-label="Run inputs (JSON)" data-testid="run-inputs"
                prop:value=move || run_inputs.get()
                on:input=move |ev| run_inputs.set(event_target_value(&ev)) />
            <button data-testid="run" disabled=move || state.with(EditorState::dirty)
                title="Runs the saved version"
                on:click=move |_| { start.dispatch(run_inputs.get_untracked()); }>"Run"</button>
            <span class="muted" data-testid="run-status">
                {move || run.get().flatten().map(|r| format!("run {}", r.status))}
            </span>
        </div>
        <ErrorNote error=run_error />
    }
    .into_any();
    let overlay = view! {
        <ErrorNote error=save_error />
        {move || help.get().then(|| view! {
            <div class="help" data-testid="help">
                <h2>"Keyboard shortcuts"</h2>
                <ul>
                    <li>"Delete / Backspace — delete the selection"</li>
                    <li>"Ctrl/Cmd+Z — undo; Ctrl/Cmd+Shift+Z or Ctrl/Cmd+Y — redo"</li>
                    <li>"Ctrl/Cmd+A — select all; Ctrl/Cmd+C, V — copy, paste; Ctrl/Cmd+D — duplicate"</li>
                    <li>"F — fit to view; wheel — zoom; drag the background — pan; Shift+drag — box select"</li>
                    <li>"Esc — stop drawing an edge; ? — this help"</li>
                </ul>
            </div>
        })}
    }
    .into_any();
    let palette = view! {
            <aside class="palette" aria-label="Palette">
                <input type="search" placeholder="Search steps" aria-label="Search steps"
                    prop:value=move || filter.get()
                    on:input=move |ev| filter.set(event_target_value(&ev)) />
                {NodeKind::ALL
                    .into_iter()
                    .map(|kind| {
                        let shown = move || kind.as_str().contains(filter.get().trim());
                        view! {
                            <button class="palette-item" data-kind=kind.as_str()
                                hidden=move || !shown()
                                on:pointerdown=move |ev: PointerEvent| {
                                    ev.prevent_default();
                                    gesture.set(Gesture::Adding(kind));
                                }>
                                {kind.as_str()}
                            </button>
                        }
                    })
                    .collect_view()}
                <p class="muted">"Drag a step onto the canvas."</p>
            </aside>
    }
    .into_any();
    let canvas = view! {
            <svg node_ref=svg class="canvas" data-testid="canvas" data-live=move || live_canvas.get().to_string()
                on:pointerdown=on_down on:pointermove=on_move on:pointerup=on_up on:wheel=on_wheel>
                <defs>
                    <marker id="wf-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8"
                        markerHeight="8" orient="auto-start-reverse">
                        <path d="M 0 0 L 10 5 L 0 10 z" class="dag-arrow"></path>
                    </marker>
                </defs>
                <g transform=transform>
                    {move || (0..edge_count.get()).map(|i| view! { <EdgeView edges layout index=i run_nodes /> }).collect_view()}
                    <For each=move || node_keys.get() key=|k| k.clone() let:key>
                        <NodeView state layout near key gesture local run_nodes />
                    </For>
                    {move || state.with(|s| {
                        let d = s.drawing.as_ref()?;
                        let from = port_out(s, &d.from)?;
                        let refused = d.refusal.is_some();
                        Some(view! {
                            <g class="ghost" data-refused=refused.to_string() data-testid="ghost-edge">
                                <line x1=from.x y1=from.y x2=d.at.x y2=d.at.y></line>
                                {d.refusal.clone().map(|why| view! {
                                    <text x=d.at.x + 12.0 y=d.at.y - 8.0 class="refusal" data-testid="refusal">{why}</text>
                                })}
                            </g>
                        })
                    })}
                </g>
                {move || match gesture.get() {
                    Gesture::Boxing { from, to } => Some(view! {
                        <rect class="box-select" x=from.x.min(to.x) y=from.y.min(to.y)
                            width=(from.x - to.x).abs() height=(from.y - to.y).abs()></rect>
                    }),
                    _ => None,
                }}
            </svg>
    }
    .into_any();
    let details = view! {
            <aside class="details" aria-label="Details">
                <Details state />
                <RunPanel state run_nodes run_id decide />
                <h2>"Validation"</h2>
                {move || {
                    let list = issues.get();
                    if list.is_empty() {
                        view! { <p class="ok" data-testid="valid">"Ready to run."</p> }.into_any()
                    } else {
                        view! {
                            <ul class="issues" data-testid="issues">
                                {list.into_iter().map(|i| view! { <li>{i.message}</li> }).collect_view()}
                            </ul>
                        }.into_any()
                    }
                }}
            </aside>
    }
    .into_any();
    view! {
        {head}
        {overlay}
        <div class="editor">
            {palette}
            <div class="canvas-wrap">{canvas} <Minimap state layout svg /></div>
            {details}
        </div>
        <p class="notice" data-testid="notice">{move || state.with(|s| s.notice.clone())}</p>
    }
}

/// The canvas's top-left corner in the viewport, to turn pointer positions into its own.
fn svg_origin(svg: NodeRef<leptos::svg::Svg>) -> (f64, f64) {
    svg.get_untracked()
        .map(|e| {
            let (l, t, _, _) = crate::ui::dom::client_rect(&e);
            (l, t)
        })
        .unwrap_or_default()
}

/// The canvas's size on screen; before it is laid out (on the server, while hydrating, or
/// not yet in the document) a typical one, so the first render is the same everywhere.
fn svg_size(svg: NodeRef<leptos::svg::Svg>) -> (f64, f64) {
    svg.get_untracked()
        .map(|e| {
            let (_, _, w, h) = crate::ui::dom::client_rect(&e);
            (w, h)
        })
        .filter(|&(w, h)| w >= 1.0 && h >= 1.0)
        .unwrap_or((800.0, 600.0))
}

#[component]
fn EdgeView(
    edges: Memo<Vec<Edge>>,
    layout: Memo<Layout>,
    index: usize,
    run_nodes: Memo<HashMap<String, RunNode>>,
) -> impl IntoView {
    let drawn = Memo::new(move |_| {
        let e = edges.with(|es| es.get(index).cloned())?;
        let (a, b) =
            layout.with(|l| Some((out_port(l.get(&e.from)?.0), in_port(l.get(&e.to)?.0))))?;
        Some((e, a, b))
    });
    move || {
        let (e, a, b) = drawn.get()?;
        // An edge into a node that is running now is the active one.
        let active = run_nodes.with(|r| {
            r.get(&e.to)
                .is_some_and(|n| matches!(n.status.as_str(), "assigned" | "running"))
        });
        let mid = (a.y + b.y) / 2.0;
        let d = format!(
            "M {} {} C {} {} {} {} {} {}",
            a.x, a.y, a.x, mid, b.x, mid, b.x, b.y
        );
        Some(view! {
            <path class="wf-edge" d=d marker-end="url(#wf-arrow)" data-from=e.from.clone()
                data-to=e.to.clone() data-conditional=e.condition.is_some().to_string()
                data-active=active.to_string()></path>
        })
    }
}

#[component]
fn NodeView(
    state: RwSignal<EditorState>,
    layout: Memo<Layout>,
    near: Memo<(Position, Position)>,
    key: String,
    gesture: RwSignal<Gesture>,
    local: impl Fn(&PointerEvent) -> Position + Copy + Send + Sync + 'static,
    run_nodes: Memo<HashMap<String, RunNode>>,
) -> impl IntoView {
    let k = StoredValue::new(key.clone());
    let run_state = Memo::new(move |_| {
        run_nodes.with(|r| r.get(&k.get_value()).map(overlay_state).unwrap_or_default())
    });
    let pos = Memo::new(move |_| layout.with(|l| l.get(&k.get_value()).copied()));
    let far = Memo::new(move |_| {
        let Some((p, _)) = pos.get() else {
            return false;
        };
        near.with(|(a, b)| p.x + NODE_W < a.x || p.x > b.x || p.y + NODE_H < a.y || p.y > b.y)
    });
    let selected = Memo::new(move |_| state.with(|s| s.selected.contains(&k.get_value())));
    let target = Memo::new(move |_| {
        state.with(|s| s.drawing.as_ref().and_then(|d| d.over.clone()) == Some(k.get_value()))
    });
    let down = move |ev: PointerEvent| {
        ev.stop_propagation();
        crate::ui::dom::capture_on_canvas(&ev);
        let additive = ev.shift_key();
        state.update(|s| {
            s.apply(Action::Select {
                key: k.get_value(),
                additive,
            });
            s.apply(Action::BeginMove);
        });
        gesture.set(Gesture::Moving { last: local(&ev) });
    };
    let port_down = move |ev: PointerEvent| {
        ev.stop_propagation();
        crate::ui::dom::capture_on_canvas(&ev);
        let at = state
            .with_untracked(|s| port_out(s, &k.get_value()))
            .unwrap_or_default();
        state.update(|s| {
            s.apply(Action::StartEdge {
                from: k.get_value(),
                at,
            })
        });
        gesture.set(Gesture::Drawing);
    };
    move || {
        let (p, kind) = pos.get()?;
        if far.get() {
            // Far out of view: a plain box, no text or ports.
            return Some(
                view! {
                    <g class="wf-node far" data-key=k.get_value() data-kind=kind>
                        <rect x=p.x y=p.y width=NODE_W height=NODE_H rx="8"></rect>
                    </g>
                }
                .into_any(),
            );
        }
        Some(view! {
            <g class="wf-node" data-key=k.get_value() data-kind=kind
                data-selected=move || selected.get().to_string()
                data-target=move || target.get().to_string()
                data-run-state=move || run_state.get()>
                <rect x=p.x y=p.y width=NODE_W height=NODE_H rx="8" on:pointerdown=down></rect>
                <text x=p.x + 12.0 y=p.y + 22.0 class="wf-key">{k.get_value()}</text>
                <text x=p.x + 12.0 y=p.y + 40.0 class="wf-kind">
                    {move || {
                        let state = run_state.get();
                        if state.is_empty() { kind.to_owned() } else { format!("{kind} · {}", state.replace('_', " ")) }
                    }}
                </text>
                <circle class="port port-in" cx=p.x + NODE_W / 2.0 cy=p.y r="6"></circle>
                <circle class="port port-out" data-testid=format!("out-{}", k.get_value())
                    cx=p.x + NODE_W / 2.0 cy=p.y + NODE_H r="7" on:pointerdown=port_down></circle>
            </g>
        }.into_any())
    }
}

/// The selected node's step, editable; each change is one undoable action.
/// The declared inputs with their defaults, as the run form's starting JSON.
fn default_inputs(def: &Definition) -> String {
    let map: serde_json::Map<String, serde_json::Value> = def
        .inputs
        .iter()
        .map(|i| {
            (
                i.name.clone(),
                i.default
                    .clone()
                    .unwrap_or(serde_json::Value::String(String::new())),
            )
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// The whole graph in small with the visible part outlined; a click there centres the canvas
/// on that point.
#[component]
fn Minimap(
    state: RwSignal<EditorState>,
    layout: Memo<Layout>,
    svg: NodeRef<leptos::svg::Svg>,
) -> impl IntoView {
    const W: f64 = 160.0;
    const H: f64 = 110.0;
    // The canvas region drawn: every node and the viewport, with a margin.
    let frame = Memo::new(move |_| {
        state.with(|s| {
            let (vw, vh) = svg_size(svg);
            let view = [
                s.view.to_canvas(Position { x: 0.0, y: 0.0 }),
                s.view.to_canvas(Position { x: vw, y: vh }),
            ];
            let (mut x0, mut y0, mut x1, mut y1) = (view[0].x, view[0].y, view[1].x, view[1].y);
            for n in &s.def.nodes {
                x0 = x0.min(n.position.x);
                y0 = y0.min(n.position.y);
                x1 = x1.max(n.position.x + NODE_W);
                y1 = y1.max(n.position.y + NODE_H);
            }
            let scale = (W / (x1 - x0).max(1.0)).min(H / (y1 - y0).max(1.0));
            (x0, y0, scale, view)
        })
    });
    let click = move |ev: PointerEvent| {
        ev.stop_propagation();
        let (x0, y0, scale, _) = frame.get_untracked();
        let target = Position {
            x: x0 + f64::from(ev.offset_x()) / scale,
            y: y0 + f64::from(ev.offset_y()) / scale,
        };
        let (vw, vh) = svg_size(svg);
        state.update(|s| {
            let centre = s.view.to_canvas(Position {
                x: vw / 2.0,
                y: vh / 2.0,
            });
            let zoom = s.view.zoom;
            s.apply(Action::Pan {
                dx: (centre.x - target.x) * zoom,
                dy: (centre.y - target.y) * zoom,
            });
        });
    };
    view! {
        <svg class="minimap" width=W height=H aria-label="Minimap" data-testid="minimap"
            on:pointerdown=click>
            // Keyed by place: a drag redraws the moved node's box only, a pan none of them.
            <For each=move || {
                    let (x0, y0, scale, _) = frame.get();
                    let w = NODE_W * scale;
                    let h = NODE_H * scale;
                    layout.with(|l| {
                        l.values()
                            .map(|(p, _)| MiniBox { x: (p.x - x0) * scale, y: (p.y - y0) * scale, w, h })
                            .collect::<Vec<_>>()
                    })
                }
                key=|b| (b.x.to_bits(), b.y.to_bits(), b.w.to_bits())
                let:b>
                <rect class="mini-node" x=b.x y=b.y width=b.w height=b.h></rect>
            </For>
            {move || {
                let (x0, y0, scale, view) = frame.get();
                view! {
                    <rect class="mini-view" x=(view[0].x - x0) * scale y=(view[0].y - y0) * scale
                        width=(view[1].x - view[0].x) * scale height=(view[1].y - view[0].y) * scale></rect>
                }
            }}
        </svg>
    }
}
