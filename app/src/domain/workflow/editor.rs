//! The workflow editor's state as a pure reducer: every change the canvas makes is an
//! [`Action`] applied to [`EditorState`], so it is tested natively and the components only
//! turn DOM events into actions. Every action that changes the graph can be undone; the graph
//! never holds a dangling or duplicate edge, a duplicate key or a cycle.

use super::template::rename_nodes;
use super::validate::would_close_cycle;
use super::{Condition, Definition, Edge, InputDecl, Node, Position, Step};
use std::collections::{BTreeSet, HashMap};

/// The grid nodes snap to when a move ends, in canvas units.
pub const GRID: f64 = 20.0;
/// A node's box on the canvas.
pub const NODE_W: f64 = 180.0;
pub const NODE_H: f64 = 56.0;
const MIN_ZOOM: f64 = 0.1;
const MAX_ZOOM: f64 = 4.0;
/// How many undo steps are kept.
const HISTORY: usize = 200;

/// Canvas to screen: `screen = canvas · zoom + (x, y)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Viewport {
    pub x: f64,
    pub y: f64,
    pub zoom: f64,
}

impl Default for Viewport {
    fn default() -> Self {
        Self {
            x: 0.0,
            y: 0.0,
            zoom: 1.0,
        }
    }
}

impl Viewport {
    pub fn to_canvas(&self, screen: Position) -> Position {
        Position {
            x: (screen.x - self.x) / self.zoom,
            y: (screen.y - self.y) / self.zoom,
        }
    }
}

/// The kinds of node the palette offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Agent,
    Tool,
    Approval,
}

impl NodeKind {
    pub const ALL: [NodeKind; 3] = [NodeKind::Agent, NodeKind::Tool, NodeKind::Approval];

    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Agent => "agent",
            NodeKind::Tool => "tool",
            NodeKind::Approval => "approval",
        }
    }

    /// The kind named `name` (as [`NodeKind::as_str`] spells it).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// `step` as a step of this kind: itself when it is one already, else a fresh one that
    /// keeps its prompt when both kinds have one.
    pub fn convert(self, step: &Step) -> Step {
        if step.kind() == self.as_str() {
            return step.clone();
        }
        let mut fresh = self.fresh_step();
        if let (
            Step::Agent { prompt: old, .. } | Step::Approval { prompt: old },
            Step::Agent { prompt, .. } | Step::Approval { prompt },
        ) = (step, &mut fresh)
        {
            prompt.clone_from(old);
        }
        fresh
    }

    fn fresh_step(self) -> Step {
        match self {
            NodeKind::Agent => Step::Agent {
                capability: Some("data_analysis".into()),
                agent: None,
                prompt: "Describe what this step should do.".into(),
            },
            NodeKind::Tool => Step::Tool {
                tool: "http_get".into(),
                arguments: serde_json::Map::new(),
            },
            NodeKind::Approval => Step::Approval {
                prompt: "Approve to continue.".into(),
            },
        }
    }
}

/// An edge being drawn from an output port: where the pointer is, the node under it, and why
/// dropping there would be refused.
#[derive(Clone, Debug, PartialEq)]
pub struct DrawnEdge {
    pub from: String,
    pub at: Position,
    pub over: Option<String>,
    pub refusal: Option<String>,
}

#[derive(Clone, Debug)]
pub enum Action {
    /// Replaces the graph (opening a workflow): clears history and selection.
    Load(Definition),
    /// The graph as it is now has been saved.
    MarkSaved,
    AddNode {
        kind: NodeKind,
        at: Position,
    },
    Select {
        key: String,
        additive: bool,
    },
    /// Selects the nodes whose boxes meet the rectangle (canvas units).
    SelectBox {
        from: Position,
        to: Position,
        additive: bool,
    },
    SelectAll,
    ClearSelection,
    /// A drag of the selection starts: the whole drag is one undo step.
    BeginMove,
    MoveSelection {
        dx: f64,
        dy: f64,
    },
    /// The drag ends: the moved nodes snap to the grid.
    EndMove,
    Delete,
    StartEdge {
        from: String,
        at: Position,
    },
    DragEdge {
        at: Position,
        over: Option<String>,
    },
    /// Drops the edge being drawn: connected unless refused.
    EndEdge,
    CancelEdge,
    Connect {
        from: String,
        to: String,
    },
    Copy,
    Paste,
    Duplicate,
    Undo,
    Redo,
    /// Replaces a node's step (the details panel).
    UpdateStep {
        key: String,
        step: Step,
    },
    SetCondition {
        index: usize,
        condition: Option<Condition>,
    },
    SetInputs(Vec<InputDecl>),
    Pan {
        dx: f64,
        dy: f64,
    },
    /// Zooms by `factor` keeping the canvas point under `at` (screen) in place.
    Zoom {
        factor: f64,
        at: Position,
    },
    FitToView {
        width: f64,
        height: f64,
    },
    AutoLayout,
}

#[derive(Clone, Debug, Default)]
struct Clip {
    nodes: Vec<Node>,
    edges: Vec<Edge>,
}

#[derive(Clone, Debug, Default)]
pub struct EditorState {
    pub def: Definition,
    pub selected: BTreeSet<String>,
    pub view: Viewport,
    pub drawing: Option<DrawnEdge>,
    /// Why the last action was refused, for a person to read.
    pub notice: Option<String>,
    undo: Vec<Definition>,
    redo: Vec<Definition>,
    moving: bool,
    clip: Clip,
    saved: Definition,
}

/// Why an edge `from → to` cannot be drawn, if it cannot.
pub fn edge_refusal(def: &Definition, from: &str, to: &str) -> Option<String> {
    if from == to {
        return Some("a node cannot depend on itself".into());
    }
    if def.edges.iter().any(|e| e.from == from && e.to == to) {
        return Some(format!("'{from}' → '{to}' is already drawn"));
    }
    if !def.nodes.iter().any(|n| n.key == to) {
        return Some(format!("there is no node '{to}'"));
    }
    would_close_cycle(def, from, to)
        .map(|path| format!("would close a cycle: {}", path.join(" → ")))
}

impl EditorState {
    pub fn new(def: Definition) -> Self {
        Self {
            saved: def.clone(),
            def,
            ..Self::default()
        }
    }

    /// Changes not yet saved.
    pub fn dirty(&self) -> bool {
        self.def != self.saved
    }

    /// The topmost node whose box holds the canvas point `p`.
    pub fn node_at(&self, p: Position) -> Option<&str> {
        self.def
            .nodes
            .iter()
            .rev()
            .find(|n| {
                p.x >= n.position.x
                    && p.x <= n.position.x + NODE_W
                    && p.y >= n.position.y
                    && p.y <= n.position.y + NODE_H
            })
            .map(|n| n.key.as_str())
    }

    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    /// Whether a drag of the selection is under way.
    pub fn moving(&self) -> bool {
        self.moving
    }

    /// Records the graph before a change (and forgets what could be redone).
    fn checkpoint(&mut self) {
        self.undo.push(self.def.clone());
        if self.undo.len() > HISTORY {
            self.undo.remove(0);
        }
        self.redo.clear();
    }

    fn node_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.def.nodes.iter_mut().find(|n| n.key == key)
    }

    fn fresh_key(&self, base: &str) -> String {
        let taken: BTreeSet<&str> = self.def.nodes.iter().map(|n| n.key.as_str()).collect();
        (1..)
            .map(|i| format!("{base}_{i}"))
            .find(|k| !taken.contains(k.as_str()))
            .unwrap_or_else(|| base.to_owned())
    }

    pub fn apply(&mut self, action: Action) {
        // Anything else arriving mid-drag (a key press, a lost pointer-up) ends the drag first,
        // so its undo step is whole.
        if self.moving
            && !matches!(
                action,
                Action::MoveSelection { .. } | Action::EndMove | Action::BeginMove
            )
        {
            self.apply(Action::EndMove);
        }
        self.notice = None;
        match action {
            Action::Load(def) => {
                *self = Self {
                    view: self.view,
                    ..Self::new(def)
                };
            }
            Action::MarkSaved => self.saved = self.def.clone(),
            Action::AddNode { kind, at } => {
                self.checkpoint();
                let key = self.fresh_key(kind.as_str());
                self.def.nodes.push(Node {
                    key: key.clone(),
                    position: snap(at),
                    step: kind.fresh_step(),
                });
                self.selected = BTreeSet::from([key]);
            }
            Action::Select { key, additive } => {
                if !self.def.nodes.iter().any(|n| n.key == key) {
                    return;
                }
                if additive {
                    if !self.selected.remove(&key) {
                        self.selected.insert(key);
                    }
                } else if !self.selected.contains(&key) {
                    self.selected = BTreeSet::from([key]);
                }
            }
            Action::SelectBox { from, to, additive } => {
                let (x0, x1) = (from.x.min(to.x), from.x.max(to.x));
                let (y0, y1) = (from.y.min(to.y), from.y.max(to.y));
                let hit = self.def.nodes.iter().filter(|n| {
                    n.position.x < x1
                        && n.position.x + NODE_W > x0
                        && n.position.y < y1
                        && n.position.y + NODE_H > y0
                });
                let keys: BTreeSet<String> = hit.map(|n| n.key.clone()).collect();
                if additive {
                    self.selected.extend(keys);
                } else {
                    self.selected = keys;
                }
            }
            Action::SelectAll => {
                self.selected = self.def.nodes.iter().map(|n| n.key.clone()).collect();
            }
            Action::ClearSelection => self.selected.clear(),
            Action::BeginMove => {
                if !self.selected.is_empty() && !self.moving {
                    self.checkpoint();
                    self.moving = true;
                }
            }
            Action::MoveSelection { dx, dy } => {
                if !self.moving || !dx.is_finite() || !dy.is_finite() {
                    return;
                }
                let selected = self.selected.clone();
                for n in self
                    .def
                    .nodes
                    .iter_mut()
                    .filter(|n| selected.contains(&n.key))
                {
                    n.position.x += dx;
                    n.position.y += dy;
                }
            }
            Action::EndMove => {
                if !self.moving {
                    return;
                }
                self.moving = false;
                let selected = self.selected.clone();
                for n in self
                    .def
                    .nodes
                    .iter_mut()
                    .filter(|n| selected.contains(&n.key))
                {
                    n.position = snap(n.position);
                }
                // A click without a move is no change: drop its undo step.
                if self.undo.last() == Some(&self.def) {
                    self.undo.pop();
                }
            }
            Action::Delete => {
                if self.selected.is_empty() {
                    return;
                }
                self.checkpoint();
                let gone = std::mem::take(&mut self.selected);
                self.def.nodes.retain(|n| !gone.contains(&n.key));
                self.def
                    .edges
                    .retain(|e| !gone.contains(&e.from) && !gone.contains(&e.to));
            }
            Action::StartEdge { from, at } => {
                if self.def.nodes.iter().any(|n| n.key == from) {
                    self.drawing = Some(DrawnEdge {
                        from,
                        at,
                        over: None,
                        refusal: None,
                    });
                }
            }
            Action::DragEdge { at, over } => {
                if let Some(d) = &mut self.drawing {
                    d.refusal = over
                        .as_ref()
                        .and_then(|to| edge_refusal(&self.def, &d.from, to));
                    d.at = at;
                    d.over = over;
                }
            }
            Action::EndEdge => {
                if let Some(d) = self.drawing.take()
                    && let Some(to) = d.over
                {
                    self.connect(d.from, to);
                }
            }
            Action::CancelEdge => self.drawing = None,
            Action::Connect { from, to } => self.connect(from, to),
            Action::Copy => self.clip = self.copy(),
            Action::Paste => self.paste(self.clip.clone()),
            Action::Duplicate => {
                let clip = self.copy();
                self.paste(clip);
            }
            Action::Undo => {
                if let Some(prev) = self.undo.pop() {
                    self.redo.push(std::mem::replace(&mut self.def, prev));
                    self.prune_selection();
                }
            }
            Action::Redo => {
                if let Some(next) = self.redo.pop() {
                    self.undo.push(std::mem::replace(&mut self.def, next));
                    self.prune_selection();
                }
            }
            Action::UpdateStep { key, step } => {
                if self.node_mut(&key).is_some_and(|n| n.step != step) {
                    self.checkpoint();
                    if let Some(n) = self.node_mut(&key) {
                        n.step = step;
                    }
                }
            }
            Action::SetCondition { index, condition } => {
                if self
                    .def
                    .edges
                    .get(index)
                    .is_some_and(|e| e.condition != condition)
                {
                    self.checkpoint();
                    if let Some(e) = self.def.edges.get_mut(index) {
                        e.condition = condition;
                    }
                }
            }
            Action::SetInputs(inputs) => {
                if self.def.inputs != inputs {
                    self.checkpoint();
                    self.def.inputs = inputs;
                }
            }
            Action::Pan { dx, dy } => {
                if dx.is_finite() && dy.is_finite() {
                    self.view.x += dx;
                    self.view.y += dy;
                }
            }
            Action::Zoom { factor, at } => {
                if !(factor.is_finite() && factor > 0.0) {
                    return;
                }
                let anchor = self.view.to_canvas(at);
                let zoom = (self.view.zoom * factor).clamp(MIN_ZOOM, MAX_ZOOM);
                self.view = Viewport {
                    x: at.x - anchor.x * zoom,
                    y: at.y - anchor.y * zoom,
                    zoom,
                };
            }
            Action::FitToView { width, height } => self.fit(width, height),
            Action::AutoLayout => self.auto_layout(),
        }
    }

    fn connect(&mut self, from: String, to: String) {
        if !self.def.nodes.iter().any(|n| n.key == from) {
            self.notice = Some(format!("there is no node '{from}'"));
            return;
        }
        if let Some(why) = edge_refusal(&self.def, &from, &to) {
            self.notice = Some(why);
            return;
        }
        self.checkpoint();
        self.def.edges.push(Edge {
            from,
            to,
            condition: None,
        });
    }

    fn copy(&self) -> Clip {
        Clip {
            nodes: self
                .def
                .nodes
                .iter()
                .filter(|n| self.selected.contains(&n.key))
                .cloned()
                .collect(),
            edges: self
                .def
                .edges
                .iter()
                .filter(|e| self.selected.contains(&e.from) && self.selected.contains(&e.to))
                .cloned()
                .collect(),
        }
    }

    /// Adds the clip's nodes under fresh keys, offset by a grid step, with the edges among
    /// them and their references to each other re-keyed; the pasted nodes become the selection.
    fn paste(&mut self, clip: Clip) {
        if clip.nodes.is_empty() {
            return;
        }
        self.checkpoint();
        let mut renamed: HashMap<String, String> = HashMap::new();
        for n in &clip.nodes {
            let key = self.fresh_key(n.step.kind());
            renamed.insert(n.key.clone(), key.clone());
            // Reserve the key at once so the next fresh key differs.
            self.def.nodes.push(Node {
                key,
                position: Position {
                    x: n.position.x + GRID * 2.0,
                    y: n.position.y + GRID * 2.0,
                },
                step: n.step.clone(),
            });
        }
        let start = self.def.nodes.len() - clip.nodes.len();
        for n in &mut self.def.nodes[start..] {
            n.step = rekey_step(&n.step, &renamed);
        }
        for e in clip.edges {
            if let (Some(from), Some(to)) = (renamed.get(&e.from), renamed.get(&e.to)) {
                self.def.edges.push(Edge {
                    from: from.clone(),
                    to: to.clone(),
                    condition: e.condition,
                });
            }
        }
        self.selected = renamed.into_values().collect();
    }

    fn prune_selection(&mut self) {
        let keys: BTreeSet<&str> = self.def.nodes.iter().map(|n| n.key.as_str()).collect();
        self.selected.retain(|k| keys.contains(k.as_str()));
    }

    fn fit(&mut self, width: f64, height: f64) {
        let Some((x0, y0, x1, y1)) =
            extent(&self.def.nodes).filter(|_| width > 0.0 && height > 0.0)
        else {
            self.view = Viewport::default();
            return;
        };
        let margin = GRID * 2.0;
        let zoom = ((width - 2.0 * margin) / (x1 - x0))
            .min((height - 2.0 * margin) / (y1 - y0))
            .clamp(MIN_ZOOM, 1.5);
        self.view = Viewport {
            x: (width - (x1 - x0) * zoom) / 2.0 - x0 * zoom,
            y: (height - (y1 - y0) * zoom) / 2.0 - y0 * zoom,
            zoom,
        };
    }

    /// Layered layout (prerequisites above dependents) as one undoable step.
    fn auto_layout(&mut self) {
        if self.def.nodes.is_empty() {
            return;
        }
        let index: HashMap<&str, usize> = self
            .def
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.key.as_str(), i))
            .collect();
        let edges: Vec<(usize, usize)> = self
            .def
            .edges
            .iter()
            .filter_map(|e| Some((*index.get(e.from.as_str())?, *index.get(e.to.as_str())?)))
            .collect();
        let layout = crate::domain::dag_view::layout(self.def.nodes.len(), &edges);
        let scale_x = (NODE_W + GRID * 2.0) / (crate::domain::dag_view::NODE_W + 28.0);
        let scale_y = (NODE_H + GRID * 3.0) / (crate::domain::dag_view::NODE_H + 28.0);
        self.checkpoint();
        for (n, (x, y)) in self.def.nodes.iter_mut().zip(layout.nodes) {
            n.position = snap(Position {
                x: x * scale_x,
                y: y * scale_y,
            });
        }
    }
}

/// The box around every node's box (left, top, right, bottom), `None` without nodes.
pub fn extent(nodes: &[Node]) -> Option<(f64, f64, f64, f64)> {
    nodes.iter().fold(None, |acc, n| {
        let p = n.position;
        let (x0, y0, x1, y1) = acc.unwrap_or((p.x, p.y, p.x + NODE_W, p.y + NODE_H));
        Some((
            x0.min(p.x),
            y0.min(p.y),
            x1.max(p.x + NODE_W),
            y1.max(p.y + NODE_H),
        ))
    })
}

fn snap(p: Position) -> Position {
    let s = |v: f64| {
        if v.is_finite() {
            (v / GRID).round() * GRID
        } else {
            0.0
        }
    };
    Position {
        x: s(p.x),
        y: s(p.y),
    }
}

/// The step with `{{nodes.<old>.output}}` references rewritten for re-keyed nodes.
fn rekey_step(step: &Step, renamed: &HashMap<String, String>) -> Step {
    let mut step = step.clone();
    match &mut step {
        Step::Agent { prompt, .. } | Step::Approval { prompt } => {
            *prompt = rename_nodes(prompt, renamed);
        }
        Step::Tool { arguments: map, .. } | Step::Workflow { inputs: map, .. } => {
            for v in map.values_mut() {
                if let Some(s) = v.as_str() {
                    *v = serde_json::Value::String(rename_nodes(s, renamed));
                }
            }
        }
    }
    step
}

#[cfg(test)]
#[path = "editor_tests.rs"]
mod tests;
