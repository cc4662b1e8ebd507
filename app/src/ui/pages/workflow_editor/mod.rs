//! The workflow editor: a canvas over the [`EditorState`] reducer. Components here only turn
//! pointer, wheel and key events into [`Action`]s; every rule lives in the reducer and in the
//! shared validation, which run in the browser as the author draws. The [`Store`] keeps the
//! reducer's state and a signal per node, so what re-renders is what changed.

mod canvas;
mod minimap;
mod store;

use crate::api::AppError;
use crate::api::workflows::{
    EditorPage, cancel_run, decide_approval, get_run, get_workflow, retry_run_node, save_workflow,
    start_run,
};
use crate::domain::ids::RunId;
use crate::domain::workflow::RunNode;
use crate::domain::workflow::editor::{Action, EditorState, NODE_H, NODE_W, NodeKind};
use crate::domain::workflow::{Catalog, Definition, Position, validate};
use crate::ui::components::error_note::ErrorNote;
use crate::ui::contexts::live::{Connection, use_live_events};
use crate::ui::pages::workflow_details::{Details, RunPanel};
use crate::ui::pages::workflow_history::{History, workflow_param};
use canvas::{EdgeView, FarPlaceholders, Gesture, GhostEdge, NodeView, Region};
use leptos::ev::{KeyboardEvent, PointerEvent, WheelEvent};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use minimap::Minimap;
use std::collections::HashMap;
pub use store::Store;

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
    let store = Store::new(EditorState::new(wf.definition.clone()));
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
        c.subworkflows = page
            .known
            .into_iter()
            .map(|k| ((k.workflow_id, k.version), k.info))
            .collect();
        c
    });
    // The shared validation, in the browser: issues appear as the graph changes. It reads the
    // graph without positions, so dragging a node does not validate again on every frame.
    let issues = Memo::new(move |_| store.graph.with(|d| catalog.with_value(|c| validate(d, c))));
    let apply = move |a: Action| store.apply(a);
    let svg = NodeRef::<leptos::svg::Svg>::new();
    let local = move |ev: &PointerEvent| -> Position {
        let (left, top) = svg_origin(svg);
        Position {
            x: f64::from(ev.client_x()) - left,
            y: f64::from(ev.client_y()) - top,
        }
    };
    let to_canvas = move |p: Position| store.view.with_untracked(|v| v.to_canvas(p));
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
    let retry = leptos::prelude::Action::new(move |(run, key): &(RunId, String)| {
        let (run, key) = (*run, key.clone());
        async move { retry_run_node(run, key).await }
    });
    let cancel = leptos::prelude::Action::new(move |run: &RunId| {
        let run = *run;
        async move { cancel_run(run).await }
    });
    let live = use_live_events();
    let ticks = live.ticks(move |e| e.task_id.is_some() && e.task_id == run_id.get());
    let connection = live.connection;
    let run = LocalResource::new(move || {
        // Re-read on each of its events, on a reconnect, and after each decision from here.
        let (id, _, _, _, _, _) = (
            run_id.get(),
            ticks.get(),
            connection.get() == Connection::Live,
            decide.version().get(),
            retry.version().get(),
            cancel.version().get(),
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
    Effect::new(move |_| run_nodes.with(|r| store.show_run(r)));
    let run_error = Signal::derive(move || {
        start
            .value()
            .get()
            .and_then(Result::err)
            .or_else(|| decide.value().get().and_then(Result::err))
            .or_else(|| retry.value().get().and_then(Result::err))
            .or_else(|| cancel.value().get().and_then(Result::err))
    });

    // Space held: a drag anywhere on the canvas pans, over nodes too.
    let hand = RwSignal::new(false);
    let keydown = window_event_listener(leptos::ev::keydown, move |ev| {
        if crate::ui::dom::in_form_field(&ev) {
            return;
        }
        if ev.key() == " " {
            // Not the page's scroll.
            ev.prevent_default();
            hand.set(true);
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
        if store.dirty.get_untracked() {
            ev.prevent_default();
            ev.set_return_value("unsaved changes");
        }
    });
    let keyup = window_event_listener(leptos::ev::keyup, move |ev| {
        if ev.key() == " " {
            hand.set(false);
        }
    });
    // A key released while the window was not focused never reaches keyup.
    let blur = window_event_listener(leptos::ev::blur, move |_| hand.set(false));
    on_cleanup(move || {
        keydown.remove();
        unload.remove();
        keyup.remove();
        blur.remove();
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
                let zoom = store.view.with_untracked(|v| v.zoom);
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
                let over = store.read(|s| {
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

    // Effects run in the browser only: the canvas says when it is live (hydrated, marked on
    // the Performance timeline as `editor-live`), and its size on screen is read then (the
    // server and hydration assume a typical one).
    let live_canvas = RwSignal::new(false);
    let size = RwSignal::new(TYPICAL_SIZE);
    Effect::new(move |_| {
        if svg.get().is_some() {
            size.set(svg_size(svg));
        }
        if !live_canvas.get_untracked() {
            live_canvas.set(true);
            crate::ui::dom::mark("editor-live");
        }
    });
    let resize = window_event_listener(leptos::ev::resize, move |_| size.set(svg_size(svg)));
    on_cleanup(move || resize.remove());
    let near = Memo::new(move |_| Region::around(store.view.get(), size.get()));
    let near_keys = canvas::near_keys(store, near);
    let near_edges = canvas::near_edges(store, near_keys);
    // Pan and zoom are one transform on one group: the SVG attribute, not an inline style,
    // which the Content-Security-Policy (`style-src 'self'`) refuses in server-rendered HTML.
    let transform = move || {
        store
            .view
            .with(|v| format!("translate({} {}) scale({})", v.x, v.y, v.zoom))
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
                {move || if store.dirty.get() { "unsaved changes" } else { "saved" }}
            </span>
        </div>
        <div class="toolbar">
            <button class="secondary" title="Undo (Ctrl+Z)" data-testid="undo"
                disabled=move || !store.can_undo.get()
                on:click=move |_| apply(Action::Undo)>"Undo"</button>
            <button class="secondary" title="Redo (Ctrl+Shift+Z)" data-testid="redo"
                disabled=move || !store.can_redo.get()
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
                let def = store.read(|s| s.def.clone());
                save.dispatch((base.get_untracked(), def, message.get_untracked()));
            }>"Save"</button>
        </div>
        <div class="toolbar">
            <input type="text" aria-label="Run inputs (JSON)" data-testid="run-inputs"
                prop:value=move || run_inputs.get()
                on:input=move |ev| run_inputs.set(event_target_value(&ev)) />
            <button data-testid="run" disabled=move || store.dirty.get()
                title="Runs the saved version"
                on:click=move |_| { start.dispatch(run_inputs.get_untracked()); }>"Run"</button>
            <span class="muted" data-testid="run-status">
                {move || run.get().flatten().map(|r| format!("run {}", r.status))}
            </span>
            {move || run.get().flatten()
                .filter(|r| !r.status.is_final())
                .map(|r| view! {
                    <button class="danger" data-testid="cancel-run"
                        on:click=move |_| { cancel.dispatch(r.id); }>"Cancel run"</button>
                })}
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
                    <li>"F — fit to view; wheel or pinch — zoom; drag the background, or Space+drag — pan; Shift+drag — box select"</li>
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
                data-hand=move || hand.get().then_some("true")
                on:pointerdown=on_down on:pointermove=on_move on:pointerup=on_up on:wheel=on_wheel>
                <defs>
                    <marker id="wf-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8"
                        markerHeight="8" orient="auto-start-reverse">
                        <path d="M 0 0 L 10 5 L 0 10 z" class="dag-arrow"></path>
                    </marker>
                </defs>
                <g class="viewport" transform=transform>
                    <FarPlaceholders store near />
                    <For each=move || near_edges.get()
                        key=|e| (e.from.clone(), e.to.clone(), e.condition.is_some()) let:edge>
                        <EdgeView store edge />
                    </For>
                    <For each=move || near_keys.get() key=|k| k.clone() let:key>
                        <NodeView store key gesture local hand />
                    </For>
                    <GhostEdge store />
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
                <Details store agents=catalog.with_value(|c| c.agents.clone()) choices=page.choices />
                <RunPanel store run_nodes run_id decide retry />
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
            <div class="canvas-wrap">{canvas} <Minimap store size /></div>
            {details}
        </div>
        <p class="notice" data-testid="notice">{move || store.notice.get()}</p>
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

/// A canvas's size on screen before it is measured.
const TYPICAL_SIZE: (f64, f64) = (800.0, 600.0);

/// The canvas's size on screen; before it is laid out (on the server, while hydrating, or
/// not yet in the document) a typical one, so the first render is the same everywhere.
fn svg_size(svg: NodeRef<leptos::svg::Svg>) -> (f64, f64) {
    svg.get_untracked()
        .map(|e| {
            let (_, _, w, h) = crate::ui::dom::client_rect(&e);
            (w, h)
        })
        .filter(|&(w, h)| w >= 1.0 && h >= 1.0)
        .unwrap_or(TYPICAL_SIZE)
}

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
