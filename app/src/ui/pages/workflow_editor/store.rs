//! The editor's reactive view of the [`EditorState`] reducer. The reducer's state stays out of
//! the reactive graph; after each action only the projections whose values changed are set, so
//! a pan changes the viewport alone, a drag the dragged nodes (and the edges at them), and an
//! edit in the panel the graph the panel and the validation read.

use crate::domain::workflow::editor::{Action, DrawnEdge, EditorState, Viewport};
use crate::domain::workflow::{Definition, Edge, Node, Position, RunNode};
use crate::ui::pages::workflow_details::overlay_state;
use leptos::prelude::*;
use std::collections::{BTreeSet, HashMap, HashSet};

/// One node's reactive parts, each set only when its value changes: a node's view reads these
/// and nothing else, so a change to one node re-renders that node only.
#[derive(Clone)]
pub struct NodeCell {
    pub place: ArcRwSignal<Position>,
    pub kind: ArcRwSignal<&'static str>,
    pub selected: ArcRwSignal<bool>,
    /// The node an edge being drawn would connect to.
    pub target: ArcRwSignal<bool>,
    /// Its state in the open run, empty when no run is open.
    pub run: ArcRwSignal<String>,
}

impl NodeCell {
    fn new(n: &Node, selected: bool, target: bool) -> Self {
        Self {
            place: ArcRwSignal::new(n.position),
            kind: ArcRwSignal::new(n.step.kind()),
            selected: ArcRwSignal::new(selected),
            target: ArcRwSignal::new(target),
            run: ArcRwSignal::new(String::new()),
        }
    }
}

/// The reducer and its projections. Copy, so every handler and component can hold it.
#[derive(Clone, Copy)]
pub struct Store {
    state: StoredValue<EditorState>,
    cells: StoredValue<HashMap<String, NodeCell>>,
    pub view: RwSignal<Viewport>,
    /// The nodes' keys in drawing order.
    pub keys: RwSignal<Vec<String>>,
    pub edges: RwSignal<Vec<Edge>>,
    /// The graph without positions: what validation and the details panel read, so dragging
    /// redraws neither.
    pub graph: RwSignal<Definition>,
    pub selection: RwSignal<BTreeSet<String>>,
    pub drawing: RwSignal<Option<DrawnEdge>>,
    pub notice: RwSignal<Option<String>>,
    pub dirty: RwSignal<bool>,
    pub can_undo: RwSignal<bool>,
    pub can_redo: RwSignal<bool>,
    /// Notified when any node's place changes.
    pub places: Trigger,
    /// Notified when places have changed and no drag is under way: what may lag a drag (the
    /// minimap) redraws on this.
    pub settled: Trigger,
    /// Whether places changed during the drag under way.
    moved_in_drag: StoredValue<bool>,
}

/// Sets `signal` to `value` when they differ; whether it did.
fn set_if<S, T>(signal: &S, value: T) -> bool
where
    S: Update<Value = T>,
    T: PartialEq,
{
    signal
        .try_maybe_update(|old| {
            let changed = *old != value;
            if changed {
                *old = value;
            }
            (changed, changed)
        })
        .unwrap_or(false)
}

/// The definition with every node at the origin.
fn without_places(def: &Definition) -> Definition {
    let mut def = def.clone();
    for n in &mut def.nodes {
        n.position = Position::default();
    }
    def
}

/// Whether two graphs are the same but for their nodes' places.
fn same_graph(a: &Definition, b: &Definition) -> bool {
    a.inputs == b.inputs
        && a.edges == b.edges
        && a.nodes.len() == b.nodes.len()
        && a.nodes
            .iter()
            .zip(&b.nodes)
            .all(|(x, y)| x.key == y.key && x.step == y.step)
}

impl Store {
    pub fn new(state: EditorState) -> Self {
        let target = state.drawing.as_ref().and_then(|d| d.over.clone());
        let cells = state
            .def
            .nodes
            .iter()
            .map(|n| {
                let cell = NodeCell::new(
                    n,
                    state.selected.contains(&n.key),
                    target.as_deref() == Some(n.key.as_str()),
                );
                (n.key.clone(), cell)
            })
            .collect();
        Self {
            cells: StoredValue::new(cells),
            view: RwSignal::new(state.view),
            keys: RwSignal::new(state.def.nodes.iter().map(|n| n.key.clone()).collect()),
            edges: RwSignal::new(state.def.edges.clone()),
            graph: RwSignal::new(without_places(&state.def)),
            selection: RwSignal::new(state.selected.clone()),
            drawing: RwSignal::new(state.drawing.clone()),
            notice: RwSignal::new(state.notice.clone()),
            dirty: RwSignal::new(state.dirty()),
            can_undo: RwSignal::new(state.can_undo()),
            can_redo: RwSignal::new(state.can_redo()),
            places: Trigger::new(),
            settled: Trigger::new(),
            moved_in_drag: StoredValue::new(false),
            state: StoredValue::new(state),
        }
    }

    /// Applies one action and updates what it changed.
    pub fn apply(self, action: Action) {
        self.state.update_value(|s| s.apply(action));
        self.sync();
    }

    /// Applies several actions as one change (one update of the projections).
    pub fn apply_all(self, actions: impl IntoIterator<Item = Action>) {
        self.state
            .update_value(|s| actions.into_iter().for_each(|a| s.apply(a)));
        self.sync();
    }

    /// Reads the reducer's state without subscribing to anything.
    pub fn read<U>(self, f: impl FnOnce(&EditorState) -> U) -> U {
        self.state.with_value(f)
    }

    /// A node's reactive parts, while it exists.
    pub fn cell(self, key: &str) -> Option<NodeCell> {
        self.cells.with_value(|c| c.get(key).cloned())
    }

    /// Shows each node's state in a run (or none).
    pub fn show_run(self, nodes: &HashMap<String, RunNode>) {
        self.cells.with_value(|cells| {
            for (key, cell) in cells {
                let state = nodes.get(key).map(overlay_state).unwrap_or_default();
                set_if(&cell.run, state);
            }
        });
    }

    fn sync(self) {
        self.state.with_value(|s| {
            let def = &s.def;
            let target = s.drawing.as_ref().and_then(|d| d.over.as_deref());
            let same_keys = self.keys.with_untracked(|k| {
                k.len() == def.nodes.len() && k.iter().zip(&def.nodes).all(|(k, n)| *k == n.key)
            });
            let mut moved = false;
            // Cells first: a view mounted for a new key finds its cell.
            self.cells.update_value(|cells| {
                if !same_keys {
                    let keys: HashSet<&str> = def.nodes.iter().map(|n| n.key.as_str()).collect();
                    cells.retain(|k, _| keys.contains(k.as_str()));
                }
                for n in &def.nodes {
                    let selected = s.selected.contains(&n.key);
                    let targeted = target == Some(n.key.as_str());
                    let Some(cell) = cells.get(&n.key) else {
                        cells.insert(n.key.clone(), NodeCell::new(n, selected, targeted));
                        moved = true;
                        continue;
                    };
                    moved |= set_if(&cell.place, n.position);
                    set_if(&cell.kind, n.step.kind());
                    set_if(&cell.selected, selected);
                    set_if(&cell.target, targeted);
                }
            });
            if !same_keys {
                self.keys
                    .set(def.nodes.iter().map(|n| n.key.clone()).collect());
                moved = true;
            }
            if moved {
                self.places.notify();
            }
            let pending = self.moved_in_drag.get_value() || moved;
            if s.moving() {
                self.moved_in_drag.set_value(pending);
            } else if pending {
                self.moved_in_drag.set_value(false);
                self.settled.notify();
            }
            if self.edges.with_untracked(|e| *e != def.edges) {
                self.edges.set(def.edges.clone());
            }
            if !self.graph.with_untracked(|g| same_graph(g, def)) {
                self.graph.set(without_places(def));
            }
            set_if(&self.view, s.view);
            if self.selection.with_untracked(|sel| *sel != s.selected) {
                self.selection.set(s.selected.clone());
            }
            if self.drawing.with_untracked(|d| *d != s.drawing) {
                self.drawing.set(s.drawing.clone());
            }
            if self.notice.with_untracked(|n| *n != s.notice) {
                self.notice.set(s.notice.clone());
            }
            set_if(&self.dirty, s.dirty());
            set_if(&self.can_undo, s.can_undo());
            set_if(&self.can_redo, s.can_redo());
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::workflow::editor::NodeKind;

    fn store() -> Store {
        let mut s = EditorState::new(Definition::default());
        for y in [0.0, 200.0] {
            s.apply(Action::AddNode {
                kind: NodeKind::Agent,
                at: Position { x: 0.0, y },
            });
        }
        s.apply(Action::Connect {
            from: "agent_1".into(),
            to: "agent_2".into(),
        });
        Store::new(s)
    }

    #[test]
    fn projections_follow_the_reducer_and_a_pan_leaves_the_graph_alone() {
        // A root owner brings the arena the server's build keeps signals in.
        Owner::new_root(None).with(projections_follow_the_reducer);
    }

    fn projections_follow_the_reducer() {
        let store = store();
        let graph_before = store.graph.get_untracked();
        let place = store.cell("agent_1").expect("a cell").place;
        store.apply(Action::Pan { dx: 30.0, dy: 0.0 });
        assert_eq!(store.view.get_untracked().x, 30.0);
        assert_eq!(store.graph.get_untracked(), graph_before);
        assert_eq!(place.get_untracked(), Position { x: 0.0, y: 0.0 });

        store.apply_all([
            Action::Select {
                key: "agent_1".into(),
                additive: false,
            },
            Action::BeginMove,
            Action::MoveSelection { dx: 40.0, dy: 20.0 },
        ]);
        assert_eq!(place.get_untracked(), Position { x: 40.0, y: 20.0 });
        assert!(
            store
                .cell("agent_1")
                .is_some_and(|c| c.selected.get_untracked())
        );
        assert!(store.dirty.get_untracked());
        // A drag changes places only: the graph the panel and validation read is the same.
        assert_eq!(store.graph.get_untracked(), graph_before);

        store.apply_all([Action::EndMove, Action::Delete]);
        assert_eq!(store.keys.get_untracked(), vec!["agent_2".to_owned()]);
        assert!(store.cell("agent_1").is_none());
        assert!(store.edges.get_untracked().is_empty());
        assert!(store.can_undo.get_untracked());

        store.apply(Action::Undo);
        assert_eq!(store.keys.get_untracked().len(), 2);
        assert_eq!(store.edges.get_untracked().len(), 1);
        assert_eq!(
            store.cell("agent_1").map(|c| c.place.get_untracked()),
            Some(Position { x: 40.0, y: 20.0 })
        );
        assert_eq!(store.read(|s| s.def.nodes.len()), 2);
    }
}
