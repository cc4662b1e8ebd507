//! Where each node of a DAG goes in a drawing: a layered (Sugiyama) layout, prerequisites
//! above their dependents, computed by `rust-sugiyama`. Disconnected parts sit side by side.

use serde::{Deserialize, Serialize};

/// A node's box in drawing units.
pub const NODE_W: f64 = 132.0;
pub const NODE_H: f64 = 40.0;
const SPACING: f64 = 28.0;
const MARGIN: f64 = 8.0;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DagLayout {
    pub width: f64,
    pub height: f64,
    /// Top-left corner of each node's box, in the order the nodes were given.
    pub nodes: Vec<(f64, f64)>,
    /// `(prerequisite, dependent)` indices into `nodes`.
    pub edges: Vec<(usize, usize)>,
}

/// Lays out `n` nodes joined by `edges` (`(prerequisite, dependent)` indices; out-of-range
/// ones are ignored).
pub fn layout(n: usize, edges: &[(usize, usize)]) -> DagLayout {
    let edges: Vec<(usize, usize)> = edges
        .iter()
        .copied()
        .filter(|&(a, b)| a < n && b < n && a != b)
        .collect();
    let ids: Vec<u32> = (0..n).filter_map(|i| u32::try_from(i).ok()).collect();
    let vertices: Vec<(u32, (f64, f64))> = ids.iter().map(|&i| (i, (NODE_W, NODE_H))).collect();
    let pairs: Vec<(u32, u32)> = edges
        .iter()
        .filter_map(|&(a, b)| Some((u32::try_from(a).ok()?, u32::try_from(b).ok()?)))
        .collect();
    let config = rust_sugiyama::configure::Config {
        vertex_spacing: SPACING,
        dummy_vertices: true,
        ..Default::default()
    };
    let mut nodes = vec![(MARGIN, MARGIN); n];
    let mut x_offset = MARGIN;
    let mut height: f64 = 0.0;
    if n > 0 {
        for (placed, _, _) in rust_sugiyama::from_vertices_and_edges(&vertices, &pairs, &config) {
            // Coordinates are box centres in the library's own frame: shift each part so its
            // left- and top-most boxes touch the margin, then put it right of the previous one.
            let min_x = placed.iter().map(|p| p.1.0).fold(f64::INFINITY, f64::min);
            let min_y = placed.iter().map(|p| p.1.1).fold(f64::INFINITY, f64::min);
            let mut right: f64 = 0.0;
            for &(i, (x, y)) in &placed {
                if let Some(slot) = nodes.get_mut(i) {
                    let left = x_offset + (x - min_x);
                    let top = MARGIN + (y - min_y);
                    *slot = (left, top);
                    right = right.max(left + NODE_W);
                    height = height.max(top + NODE_H);
                }
            }
            x_offset = right + SPACING;
        }
    }
    DagLayout {
        width: (x_offset - SPACING + MARGIN).max(NODE_W + 2.0 * MARGIN),
        height: (height + MARGIN).max(NODE_H + 2.0 * MARGIN),
        nodes,
        edges,
    }
}

/// The layout of a task's subtasks, in the task's subtask order.
pub fn for_task(task: &super::run::TaskDetail) -> DagLayout {
    let index = |id: &super::ids::NodeId| task.subtasks.iter().position(|s| &s.id == id);
    let edges: Vec<(usize, usize)> = task
        .subtasks
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            s.depends_on
                .iter()
                .filter_map(move |d| Some((index(d)?, i)))
        })
        .collect();
    layout(task.subtasks.len(), &edges)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlaps(a: (f64, f64), b: (f64, f64)) -> bool {
        (a.0 - b.0).abs() < NODE_W && (a.1 - b.1).abs() < NODE_H
    }

    #[test]
    fn prerequisites_sit_above_their_dependents() {
        let l = layout(3, &[(0, 1), (1, 2)]);
        assert!(
            l.nodes[0].1 < l.nodes[1].1 && l.nodes[1].1 < l.nodes[2].1,
            "{l:?}"
        );
    }

    #[test]
    fn a_diamond_spreads_its_middle_layer_without_overlaps() {
        // 0 → {1, 2, 3} → 4
        let l = layout(5, &[(0, 1), (0, 2), (0, 3), (1, 4), (2, 4), (3, 4)]);
        let middle = [l.nodes[1], l.nodes[2], l.nodes[3]];
        assert!(
            middle.iter().all(|p| (p.1 - middle[0].1).abs() < 1e-6),
            "{l:?}"
        );
        for i in 0..5 {
            for j in i + 1..5 {
                assert!(
                    !overlaps(l.nodes[i], l.nodes[j]),
                    "{i} and {j} overlap: {l:?}"
                );
            }
        }
        for &(x, y) in &l.nodes {
            assert!(x >= 0.0 && y >= 0.0 && x + NODE_W <= l.width && y + NODE_H <= l.height);
        }
    }

    #[test]
    fn unconnected_nodes_sit_side_by_side() {
        let l = layout(3, &[]);
        for i in 0..3 {
            for j in i + 1..3 {
                assert!(!overlaps(l.nodes[i], l.nodes[j]), "{l:?}");
            }
        }
        assert_eq!(layout(0, &[]).nodes.len(), 0);
    }
}
