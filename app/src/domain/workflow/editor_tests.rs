//! The editor reducer: each action, undo/redo of each, and properties over random sequences.

use super::*;
use crate::domain::workflow::{Catalog, IssueCode, validate};
use proptest::prelude::*;

fn at(x: f64, y: f64) -> Position {
    Position { x, y }
}

/// Three agent nodes a, b, c (added, then re-keyed for readable tests) with no edges.
fn three() -> EditorState {
    let mut s = EditorState::default();
    for (i, _) in ["a", "b", "c"].iter().enumerate() {
        s.apply(Action::AddNode {
            kind: NodeKind::Agent,
            at: at(0.0, i as f64 * 100.0),
        });
    }
    s
}

fn keys(s: &EditorState) -> Vec<String> {
    s.def.nodes.iter().map(|n| n.key.clone()).collect()
}

fn edges(s: &EditorState) -> Vec<(String, String)> {
    s.def
        .edges
        .iter()
        .map(|e| (e.from.clone(), e.to.clone()))
        .collect()
}

#[test]
fn nodes_get_fresh_keys_and_snap_to_the_grid() {
    let mut s = EditorState::default();
    s.apply(Action::AddNode {
        kind: NodeKind::Agent,
        at: at(33.0, 47.0),
    });
    s.apply(Action::AddNode {
        kind: NodeKind::Agent,
        at: at(0.0, 0.0),
    });
    s.apply(Action::AddNode {
        kind: NodeKind::Approval,
        at: at(0.0, 0.0),
    });
    assert_eq!(keys(&s), vec!["agent_1", "agent_2", "approval_1"]);
    assert_eq!(s.def.nodes[0].position, at(40.0, 40.0));
    assert_eq!(s.selected, BTreeSet::from(["approval_1".to_owned()]));
    assert!(s.dirty());
}

#[test]
fn a_drag_is_one_undo_step_and_snaps_when_it_ends() {
    let mut s = three();
    s.apply(Action::Select {
        key: "agent_1".into(),
        additive: false,
    });
    s.apply(Action::BeginMove);
    for _ in 0..10 {
        s.apply(Action::MoveSelection { dx: 3.3, dy: 1.1 });
    }
    s.apply(Action::EndMove);
    assert_eq!(s.def.nodes[0].position, at(40.0, 20.0));
    s.apply(Action::Undo);
    assert_eq!(s.def.nodes[0].position, at(0.0, 0.0));
    s.apply(Action::Redo);
    assert_eq!(s.def.nodes[0].position, at(40.0, 20.0));
    // A click that moves nothing leaves no undo step behind: the next undo undoes the drag.
    s.apply(Action::BeginMove);
    s.apply(Action::EndMove);
    s.apply(Action::Undo);
    assert_eq!(s.def.nodes[0].position, at(0.0, 0.0));
}

#[test]
fn connecting_refuses_a_cycle_with_its_path_while_drawing_and_on_drop() {
    let mut s = three();
    s.apply(Action::Connect {
        from: "agent_1".into(),
        to: "agent_2".into(),
    });
    s.apply(Action::Connect {
        from: "agent_2".into(),
        to: "agent_3".into(),
    });
    s.apply(Action::StartEdge {
        from: "agent_3".into(),
        at: at(0.0, 0.0),
    });
    s.apply(Action::DragEdge {
        at: at(5.0, 5.0),
        over: Some("agent_1".into()),
    });
    let refusal = s.drawing.as_ref().and_then(|d| d.refusal.clone()).unwrap();
    assert_eq!(
        refusal,
        "would close a cycle: agent_3 → agent_1 → agent_2 → agent_3"
    );
    s.apply(Action::EndEdge);
    assert_eq!(edges(&s).len(), 2, "the refused edge was not added");
    assert_eq!(s.notice.as_deref(), Some(refusal.as_str()));
    assert!(s.drawing.is_none());
    // Dragging over nothing, then a valid target, clears the refusal.
    s.apply(Action::StartEdge {
        from: "agent_1".into(),
        at: at(0.0, 0.0),
    });
    s.apply(Action::DragEdge {
        at: at(1.0, 1.0),
        over: Some("agent_3".into()),
    });
    assert_eq!(s.drawing.as_ref().unwrap().refusal, None);
    s.apply(Action::EndEdge);
    assert_eq!(edges(&s).len(), 3);
    s.apply(Action::Connect {
        from: "agent_1".into(),
        to: "agent_1".into(),
    });
    assert_eq!(s.notice.as_deref(), Some("a node cannot depend on itself"));
    s.apply(Action::Connect {
        from: "agent_1".into(),
        to: "agent_2".into(),
    });
    assert!(s.notice.as_deref().unwrap().contains("already drawn"));
}

#[test]
fn delete_cascades_edges_and_undo_restores_both() {
    let mut s = three();
    s.apply(Action::Connect {
        from: "agent_1".into(),
        to: "agent_2".into(),
    });
    s.apply(Action::Connect {
        from: "agent_2".into(),
        to: "agent_3".into(),
    });
    let before = s.def.clone();
    s.apply(Action::Select {
        key: "agent_2".into(),
        additive: false,
    });
    s.apply(Action::Delete);
    assert_eq!(keys(&s), vec!["agent_1", "agent_3"]);
    assert!(s.def.edges.is_empty());
    s.apply(Action::Undo);
    assert_eq!(s.def, before);
}

#[test]
fn box_and_shift_selection() {
    let mut s = three();
    s.apply(Action::SelectBox {
        from: at(-10.0, -10.0),
        to: at(50.0, 150.0),
        additive: false,
    });
    assert_eq!(s.selected.len(), 2);
    s.apply(Action::Select {
        key: "agent_3".into(),
        additive: true,
    });
    assert_eq!(s.selected.len(), 3);
    s.apply(Action::Select {
        key: "agent_1".into(),
        additive: true,
    });
    assert_eq!(s.selected.len(), 2, "shift-click toggles");
    s.apply(Action::ClearSelection);
    s.apply(Action::SelectAll);
    assert_eq!(s.selected.len(), 3);
}

#[test]
fn paste_rekeys_nodes_their_edges_and_their_references() {
    let mut s = three();
    s.apply(Action::Connect {
        from: "agent_1".into(),
        to: "agent_2".into(),
    });
    s.apply(Action::UpdateStep {
        key: "agent_2".into(),
        step: Step::Agent {
            capability: Some("data_analysis".into()),
            agent: None,
            prompt: "use {{nodes.agent_1.output}}".into(),
        },
    });
    s.apply(Action::Select {
        key: "agent_1".into(),
        additive: false,
    });
    s.apply(Action::Select {
        key: "agent_2".into(),
        additive: true,
    });
    s.apply(Action::Copy);
    s.apply(Action::Paste);
    assert_eq!(
        keys(&s),
        vec!["agent_1", "agent_2", "agent_3", "agent_4", "agent_5"]
    );
    assert!(edges(&s).contains(&("agent_4".into(), "agent_5".into())));
    let Step::Agent { prompt, .. } = &s.def.nodes[4].step else {
        panic!()
    };
    assert_eq!(prompt, "use {{nodes.agent_4.output}}");
    assert_eq!(
        s.selected,
        BTreeSet::from(["agent_4".to_owned(), "agent_5".to_owned()])
    );
    assert_eq!(
        validate(&s.def, &Catalog::standard())
            .iter()
            .filter(|i| i.code == IssueCode::NotUpstream)
            .count(),
        0
    );
    s.apply(Action::Duplicate);
    assert_eq!(s.def.nodes.len(), 7);
}

#[test]
fn panel_edits_and_layout_are_undoable_and_saving_clears_dirty() {
    let mut s = three();
    s.apply(Action::Connect {
        from: "agent_1".into(),
        to: "agent_2".into(),
    });
    s.apply(Action::MarkSaved);
    assert!(!s.dirty());
    let saved = s.def.clone();
    s.apply(Action::SetCondition {
        index: 0,
        condition: Some(
            serde_json::from_value(serde_json::json!({"op": "contains", "value": "ok"})).unwrap(),
        ),
    });
    s.apply(Action::AutoLayout);
    assert!(s.dirty());
    s.apply(Action::Undo);
    s.apply(Action::Undo);
    assert_eq!(s.def, saved);
    assert!(!s.dirty());
}

#[test]
fn zoom_keeps_the_point_under_the_cursor_and_fit_shows_everything() {
    let mut s = three();
    let cursor = at(300.0, 200.0);
    let before = s.view.to_canvas(cursor);
    s.apply(Action::Zoom {
        factor: 1.5,
        at: cursor,
    });
    let after = s.view.to_canvas(cursor);
    assert!((before.x - after.x).abs() < 1e-9 && (before.y - after.y).abs() < 1e-9);
    s.apply(Action::Zoom {
        factor: 1e9,
        at: cursor,
    });
    assert_eq!(s.view.zoom, 4.0);
    s.apply(Action::FitToView {
        width: 800.0,
        height: 600.0,
    });
    for n in &s.def.nodes {
        let x = n.position.x * s.view.zoom + s.view.x;
        let y = n.position.y * s.view.zoom + s.view.y;
        assert!(
            x >= 0.0
                && x + NODE_W * s.view.zoom <= 800.0
                && y >= 0.0
                && y + NODE_H * s.view.zoom <= 600.0
        );
    }
}

fn action() -> impl Strategy<Value = Action> {
    let key = (1usize..6).prop_map(|i| format!("agent_{i}"));
    let pos = (-500.0f64..500.0, -500.0f64..500.0).prop_map(|(x, y)| at(x, y));
    prop_oneof![
        pos.clone().prop_map(|at| Action::AddNode {
            kind: NodeKind::Agent,
            at
        }),
        (key.clone(), any::<bool>()).prop_map(|(key, additive)| Action::Select { key, additive }),
        (pos.clone(), pos.clone()).prop_map(|(from, to)| Action::SelectBox {
            from,
            to,
            additive: false
        }),
        Just(Action::SelectAll),
        Just(Action::BeginMove),
        (-50.0f64..50.0, -50.0f64..50.0).prop_map(|(dx, dy)| Action::MoveSelection { dx, dy }),
        Just(Action::EndMove),
        Just(Action::Delete),
        (key.clone(), key.clone()).prop_map(|(from, to)| Action::Connect { from, to }),
        (key.clone(), pos.clone()).prop_map(|(to, at)| Action::DragEdge { at, over: Some(to) }),
        Just(Action::EndEdge),
        Just(Action::Copy),
        Just(Action::Paste),
        Just(Action::Duplicate),
        Just(Action::Undo),
        Just(Action::Redo),
        Just(Action::AutoLayout),
        (0.2f64..5.0, pos).prop_map(|(factor, at)| Action::Zoom { factor, at }),
    ]
}

#[test]
fn changing_a_node_kind_keeps_its_prompt_where_it_can_and_is_one_undo_step() {
    let mut s = three();
    let step = |s: &EditorState| s.def.nodes[0].step.clone();
    let prompt = "Summarise {{inputs.topic}}".to_owned();
    s.apply(Action::UpdateStep {
        key: "agent_1".into(),
        step: Step::Agent {
            capability: Some("data_analysis".into()),
            agent: None,
            prompt: prompt.clone(),
        },
    });
    let agent = step(&s);
    assert_eq!(NodeKind::Agent.convert(&agent), agent);
    s.apply(Action::UpdateStep {
        key: "agent_1".into(),
        step: NodeKind::Approval.convert(&agent),
    });
    assert_eq!(step(&s), Step::Approval { prompt });
    s.apply(Action::UpdateStep {
        key: "agent_1".into(),
        step: NodeKind::Tool.convert(&step(&s)),
    });
    assert_eq!(step(&s).kind(), "tool");
    s.apply(Action::Undo);
    s.apply(Action::Undo);
    assert_eq!(step(&s), agent);
    assert_eq!(NodeKind::parse("approval"), Some(NodeKind::Approval));
    assert_eq!(NodeKind::parse("workflow"), None);
}

proptest! {
    #[test]
    fn random_edits_keep_the_graph_sound_and_undo_all_returns_to_the_start(
        actions in proptest::collection::vec(action(), 1..60)
    ) {
        let mut s = three();
        s.apply(Action::Connect { from: "agent_1".into(), to: "agent_2".into() });
        let start = s.def.clone();
        s.apply(Action::Load(start.clone()));
        let mut steps = 0;
        for a in actions {
            if matches!(a, Action::DragEdge { .. }) {
                // A drag follows a start: draw from the last node towards the target.
                if let Some(from) = s.def.nodes.last().map(|n| n.key.clone()) {
                    s.apply(Action::StartEdge { from, at: at(0.0, 0.0) });
                }
            }
            let before = s.def.clone();
            s.apply(a);
            if s.def != before && !s.moving {
                steps += 1;
            }
            let issues = validate(&s.def, &Catalog::standard());
            for i in &issues {
                prop_assert!(
                    !matches!(i.code, IssueCode::Cycle | IssueCode::DanglingEdge | IssueCode::DuplicateEdge
                        | IssueCode::SelfLoop | IssueCode::DuplicateKey | IssueCode::Key),
                    "{:?} after {} steps", i, steps
                );
            }
        }
        s.apply(Action::EndMove);
        for _ in 0..(HISTORY + 10) {
            s.apply(Action::Undo);
        }
        prop_assert_eq!(s.def, start);
    }
}
