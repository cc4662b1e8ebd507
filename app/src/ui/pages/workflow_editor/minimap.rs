//! The whole graph in small with the visible part outlined; a press there centres the canvas on
//! that point. Every node's box is one path in canvas units under one transform, so a pan moves
//! the outline only and a drag rewrites one attribute.

use super::canvas::boxes_path;
use super::store::Store;
use crate::domain::workflow::Position;
use crate::domain::workflow::editor::{Action, extent};
use leptos::ev::PointerEvent;
use leptos::prelude::*;

const W: f64 = 160.0;
const H: f64 = 110.0;

/// A box in canvas units: left, top, right, bottom.
type Bounds = (f64, f64, f64, f64);

fn union(a: Bounds, b: Bounds) -> Bounds {
    (a.0.min(b.0), a.1.min(b.1), a.2.max(b.2), a.3.max(b.3))
}

/// The frame the minimap shows: its top-left corner and scale, and the view's box in it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Frame {
    origin: Position,
    scale: f64,
    view: Bounds,
}

/// `size`: the canvas's size on screen.
#[component]
pub fn Minimap(store: Store, size: RwSignal<(f64, f64)>) -> impl IntoView {
    // The nodes' extent and their boxes, redone when places settle (not on every frame of a
    // drag: a change here would widen each frame's repaint to the minimap's corner), and not
    // when the view changes.
    let extent = Memo::new(move |_| {
        store.settled.track();
        store.read(|s| extent(&s.def.nodes))
    });
    let boxes = Memo::new(move |_| {
        store.settled.track();
        store.read(|s| boxes_path(s.def.nodes.iter().map(|n| n.position)))
    });
    let frame = Memo::new(move |_| {
        let view = store.view.get();
        let (vw, vh) = size.get();
        let a = view.to_canvas(Position { x: 0.0, y: 0.0 });
        let b = view.to_canvas(Position { x: vw, y: vh });
        let shown = (a.x, a.y, b.x, b.y);
        let (x0, y0, x1, y1) = extent.get().map_or(shown, |e| union(e, shown));
        Frame {
            origin: Position { x: x0, y: y0 },
            scale: (W / (x1 - x0).max(1.0)).min(H / (y1 - y0).max(1.0)),
            view: shown,
        }
    });
    // The view's box in minimap units: x, y, width, height.
    let outline = Memo::new(move |_| {
        frame.with(|f| {
            let (x0, y0, x1, y1) = f.view;
            (
                (x0 - f.origin.x) * f.scale,
                (y0 - f.origin.y) * f.scale,
                (x1 - x0) * f.scale,
                (y1 - y0) * f.scale,
            )
        })
    });
    let press = move |ev: PointerEvent| {
        ev.stop_propagation();
        let f = frame.get_untracked();
        let target = Position {
            x: f.origin.x + f64::from(ev.offset_x()) / f.scale,
            y: f.origin.y + f64::from(ev.offset_y()) / f.scale,
        };
        let view = store.view.get_untracked();
        let (vw, vh) = size.get_untracked();
        let centre = view.to_canvas(Position {
            x: vw / 2.0,
            y: vh / 2.0,
        });
        store.apply(Action::Pan {
            dx: (centre.x - target.x) * view.zoom,
            dy: (centre.y - target.y) * view.zoom,
        });
    };
    view! {
        <svg class="minimap" width=W height=H aria-label="Minimap" data-testid="minimap"
            on:pointerdown=press>
            <g transform=move || frame.with(|f| {
                format!("scale({}) translate({} {})", f.scale, -f.origin.x, -f.origin.y)
            })>
                <path class="mini-nodes" d=move || boxes.get()
                    data-count=move || store.keys.with(Vec::len)></path>
            </g>
            <rect class="mini-view" x=move || outline.get().0 y=move || outline.get().1
                width=move || outline.get().2 height=move || outline.get().3></rect>
        </svg>
    }
}
