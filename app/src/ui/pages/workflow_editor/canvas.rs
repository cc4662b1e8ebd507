//! What the canvas draws: nodes, edges and the edge being drawn. Nodes in or near the view are
//! drawn one by one, each reading only its own cells of the [`Store`] (a change to one node
//! re-renders that node and the edges at it); those far outside it are plain boxes in one path.

use super::store::Store;
use crate::domain::workflow::editor::{Action, NODE_H, NODE_W, Viewport};
use crate::domain::workflow::{Edge, Position};
use leptos::ev::PointerEvent;
use leptos::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write;

/// What the pointer is doing on the canvas.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Gesture {
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
    Adding(crate::domain::workflow::editor::NodeKind),
}

/// Where edges leave a node placed at `p`.
pub fn out_port(p: Position) -> Position {
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

/// Canvas units per cell of the region kept fully drawn.
const REGION_CELL: f64 = 500.0;

/// The canvas region within half a screen's margin of the view, widened to whole cells so that
/// it changes only now and then while panning: nodes outside it are drawn as plain boxes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Region {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
}

impl Region {
    pub fn around(view: Viewport, (w, h): (f64, f64)) -> Self {
        let a = view.to_canvas(Position {
            x: -w / 2.0,
            y: -h / 2.0,
        });
        let b = view.to_canvas(Position {
            x: 1.5 * w,
            y: 1.5 * h,
        });
        let down = |v: f64| (v / REGION_CELL).floor() * REGION_CELL;
        let up = |v: f64| (v / REGION_CELL).ceil() * REGION_CELL;
        Self {
            x0: down(a.x),
            y0: down(a.y),
            x1: up(b.x),
            y1: up(b.y),
        }
    }

    pub fn excludes(&self, p: Position) -> bool {
        p.x + NODE_W < self.x0 || p.x > self.x1 || p.y + NODE_H < self.y0 || p.y > self.y1
    }
}

/// One node near the view: a group placed by one transform, with its name, kind, run state and
/// ports.
#[component]
pub fn NodeView(
    store: Store,
    key: String,
    gesture: RwSignal<Gesture>,
    /// The pointer's place on the canvas element (screen units).
    local: impl Fn(&PointerEvent) -> Position + Copy + Send + Sync + 'static,
    /// Space is held: a press here pans the canvas (the canvas handles it) instead.
    hand: RwSignal<bool>,
) -> impl IntoView {
    let cell = store.cell(&key)?;
    let place = RwSignal::from(cell.place);
    let kind = RwSignal::from(cell.kind);
    let selected = RwSignal::from(cell.selected);
    let target = RwSignal::from(cell.target);
    let run = RwSignal::from(cell.run);
    let k = StoredValue::new(key);
    let down = move |ev: PointerEvent| {
        if hand.get_untracked() {
            return;
        }
        ev.stop_propagation();
        crate::ui::dom::capture_on_canvas(&ev);
        store.apply_all([
            Action::Select {
                key: k.get_value(),
                additive: ev.shift_key(),
            },
            Action::BeginMove,
        ]);
        gesture.set(Gesture::Moving { last: local(&ev) });
    };
    let port_down = move |ev: PointerEvent| {
        if hand.get_untracked() {
            return;
        }
        ev.stop_propagation();
        crate::ui::dom::capture_on_canvas(&ev);
        store.apply(Action::StartEdge {
            from: k.get_value(),
            at: out_port(place.get_untracked()),
        });
        gesture.set(Gesture::Drawing);
    };
    let caption = move || {
        let kind = kind.get();
        run.with(|state| {
            if state.is_empty() {
                kind.to_owned()
            } else {
                format!("{kind} · {}", state.replace('_', " "))
            }
        })
    };
    // Flags are set only while true: most nodes carry none, which keeps the first render lean.
    Some(
        view! {
            <g class="wf-node" data-key=k.get_value() data-kind=move || kind.get()
                transform=move || place.with(|p| format!("translate({} {})", p.x, p.y))
                data-selected=move || selected.get().then_some("true")
                data-target=move || target.get().then_some("true")
                data-run-state=move || run.with(|r| (!r.is_empty()).then(|| r.clone()))>
                <rect width=NODE_W height=NODE_H rx="8" on:pointerdown=down></rect>
                <text x="12" y="22" class="wf-key">{k.get_value()}</text>
                <text x="12" y="40" class="wf-kind">{caption}</text>
                <circle class="port port-in" cx=NODE_W / 2.0 cy="0" r="6"></circle>
                <circle class="port port-out" data-testid=format!("out-{}", k.get_value())
                    cx=NODE_W / 2.0 cy=NODE_H r="7" on:pointerdown=port_down></circle>
            </g>
        }
        .into_any(),
    )
}

/// One edge, from the output port of `edge.from` to the input port of `edge.to`; the active
/// one (into a node running now) is highlighted.
#[component]
pub fn EdgeView(store: Store, edge: Edge) -> impl IntoView {
    let (Some(from), Some(to)) = (store.cell(&edge.from), store.cell(&edge.to)) else {
        return None;
    };
    let from = RwSignal::from(from.place);
    let (to_place, to_run) = (RwSignal::from(to.place), RwSignal::from(to.run));
    let d = move || {
        let mut d = String::new();
        edge_path(&mut d, from.get(), to_place.get());
        d
    };
    let active = move || {
        to_run
            .with(|r| matches!(r.as_str(), "assigned" | "running"))
            .then_some("true")
    };
    Some(
        view! {
            <path class="wf-edge" d=d marker-end="url(#wf-arrow)" data-from=edge.from
                data-to=edge.to data-conditional=edge.condition.is_some().to_string()
                data-active=active></path>
        }
        .into_any(),
    )
}

/// The edge being drawn from an output port, red with the reason when dropping it would be
/// refused.
#[component]
pub fn GhostEdge(store: Store) -> impl IntoView {
    move || {
        let d = store.drawing.get()?;
        let from = out_port(store.cell(&d.from)?.place.get_untracked());
        let refused = d.refusal.is_some();
        Some(view! {
            <g class="ghost" data-refused=refused.to_string() data-testid="ghost-edge">
                <line x1=from.x y1=from.y x2=d.at.x y2=d.at.y></line>
                {d.refusal.map(|why| view! {
                    <text x=d.at.x + 12.0 y=d.at.y - 8.0 class="refusal" data-testid="refusal">{why}</text>
                })}
            </g>
        })
    }
}

/// Appends the curve of an edge between nodes placed at `from` and `to`.
fn edge_path(d: &mut String, from: Position, to: Position) {
    let (a, b) = (out_port(from), in_port(to));
    let mid = (a.y + b.y) / 2.0;
    let _ = write!(
        d,
        "M{} {}C{} {} {} {} {} {}",
        a.x, a.y, a.x, mid, b.x, mid, b.x, b.y
    );
}

/// A path of node-sized boxes placed at `places`.
pub fn boxes_path(places: impl Iterator<Item = Position>) -> String {
    let mut d = String::new();
    for p in places {
        let _ = write!(d, "M{} {}h{NODE_W}v{NODE_H}h-{NODE_W}z", p.x, p.y);
    }
    d
}

/// The keys of the nodes in the region, in drawing order: the nodes drawn one by one.
pub fn near_keys(store: Store, near: Memo<Region>) -> Memo<Vec<String>> {
    Memo::new(move |_| {
        store.places.track();
        let region = near.get();
        store.read(|s| {
            s.def
                .nodes
                .iter()
                .filter(|n| !region.excludes(n.position))
                .map(|n| n.key.clone())
                .collect()
        })
    })
}

/// The edges at a node drawn one by one.
pub fn near_edges(store: Store, keys: Memo<Vec<String>>) -> Memo<Vec<Edge>> {
    Memo::new(move |_| {
        keys.with(|keys| {
            let near: HashSet<&str> = keys.iter().map(String::as_str).collect();
            store.edges.with(|edges| {
                edges
                    .iter()
                    .filter(|e| near.contains(e.from.as_str()) || near.contains(e.to.as_str()))
                    .cloned()
                    .collect()
            })
        })
    })
}

/// Placeholders far outside the view, in one cell of the region's grid: node boxes and the
/// edges leaving them.
#[derive(Clone, Debug, Default, PartialEq)]
struct FarCell {
    boxes: Vec<Position>,
    lines: Vec<(Position, Position)>,
}

/// Nodes far outside the view, and the edges between them, as plain paths (no text, no ports,
/// no handlers: they are off screen by construction), one pair per cell of the region's grid
/// so that no single path spans the canvas (every tile repainted would have to walk it).
#[component]
pub fn FarPlaceholders(store: Store, near: Memo<Region>) -> impl IntoView {
    // Redone when places settle, not on each frame of a drag: what a drag moves out here is
    // off screen until it ends (a drag near the view leaves these as they are anyway).
    let far = Memo::new(move |_| {
        store.settled.track();
        store.edges.track();
        let region = near.get();
        store.read(|s| {
            let cell_of = |p: Position| {
                (
                    (p.x / REGION_CELL).floor() as i64,
                    (p.y / REGION_CELL).floor() as i64,
                )
            };
            let mut cells: BTreeMap<(i64, i64), FarCell> = BTreeMap::new();
            for n in &s.def.nodes {
                if region.excludes(n.position) {
                    cells
                        .entry(cell_of(n.position))
                        .or_default()
                        .boxes
                        .push(n.position);
                }
            }
            let at: HashMap<&str, Position> = s
                .def
                .nodes
                .iter()
                .map(|n| (n.key.as_str(), n.position))
                .collect();
            for e in &s.def.edges {
                if let (Some(&a), Some(&b)) = (at.get(e.from.as_str()), at.get(e.to.as_str()))
                    && region.excludes(a)
                    && region.excludes(b)
                {
                    cells.entry(cell_of(a)).or_default().lines.push((a, b));
                }
            }
            cells.into_values().collect::<Vec<_>>()
        })
    });
    let count =
        move |f: fn(&FarCell) -> usize| far.with(|cells| cells.iter().map(f).sum::<usize>());
    view! {
        <g class="far" data-nodes=move || count(|c| c.boxes.len())
            data-edges=move || count(|c| c.lines.len())>
            {move || far.with(|cells| {
                cells
                    .iter()
                    .map(|c| {
                        let mut lines = String::new();
                        for (a, b) in &c.lines {
                            edge_path(&mut lines, *a, *b);
                        }
                        view! {
                            <path class="far-edges" d=lines></path>
                            <path class="far-nodes" d=boxes_path(c.boxes.iter().copied())></path>
                        }
                    })
                    .collect_view()
            })}
        </g>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCREEN: (f64, f64) = (900.0, 600.0);

    #[test]
    fn the_region_holds_the_view_and_half_a_screen_around_it_and_a_short_pan_keeps_it() {
        let view = Viewport::default();
        let region = Region::around(view, SCREEN);
        let at = |x, y| Position { x, y };
        assert!(!region.excludes(at(0.0, 0.0)));
        assert!(!region.excludes(at(1400.0, 850.0)));
        assert!(region.excludes(at(3000.0, 0.0)));
        assert!(region.excludes(at(0.0, -1000.0)));
        // A node partly inside is drawn.
        assert!(!region.excludes(at(-500.0 - NODE_W + 1.0, 0.0)));
        // Panning within a cell leaves the region (and so every node's placeholder) as it is.
        let panned = Viewport { x: -100.0, ..view };
        assert_eq!(Region::around(panned, SCREEN), region);
        // Zoomed out, the same screen holds more of the canvas.
        let out = Region::around(Viewport { zoom: 0.25, ..view }, SCREEN);
        assert!(!out.excludes(at(3000.0, 0.0)));
    }
}
