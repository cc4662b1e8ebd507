//! Workflow validation at 1,000 and 10,000 nodes (the target: under 50 ms at 10,000), beside a
//! baseline from the same run: petgraph's topological sort of the same graph, the least any
//! validation must do.
//!
//! Run: `cargo bench -p app --bench validation`.
#![allow(clippy::unwrap_used)]

use app::domain::workflow::{Catalog, Definition, validate};
use petgraph::graph::{DiGraph, NodeIndex};
use serde_json::json;
use std::time::{Duration, Instant};

/// A layered graph: rows of 10 nodes, each reading the output of the two nodes above it.
fn workflow(n: usize) -> Definition {
    let mut nodes = Vec::with_capacity(n);
    let mut edges = Vec::new();
    for i in 0..n {
        let parents: Vec<usize> = if i < 10 {
            vec![]
        } else {
            vec![i - 10, i - 10 - (i % 10 != 0) as usize]
        };
        let prompt = parents
            .iter()
            .map(|p| format!("{{{{nodes.n{p}.output}}}}"))
            .collect::<Vec<_>>()
            .join(" and ");
        nodes.push(json!({"key": format!("n{i}"), "kind": "agent", "capability": "data_analysis",
                          "prompt": format!("combine {prompt}"), "position": {"x": (i % 10) * 200, "y": (i / 10) * 100}}));
        let mut seen = Vec::new();
        for p in parents {
            if !seen.contains(&p) {
                seen.push(p);
                edges.push(json!({"from": format!("n{p}"), "to": format!("n{i}")}));
            }
        }
    }
    serde_json::from_value(json!({"nodes": nodes, "edges": edges})).unwrap()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let catalog = Catalog::standard();
    println!("Workflow validation (median of 21 runs)\n");
    println!(
        "{:>8} {:>8} {:>14} {:>16} {:>7}",
        "nodes", "edges", "validate ms", "toposort ms", "ratio"
    );
    for n in [1_000, 10_000] {
        let def = workflow(n);
        assert!(
            validate(&def, &catalog).is_empty(),
            "the benchmark graph is valid"
        );
        let runs: Vec<Duration> = (0..21)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(validate(&def, &catalog));
                t.elapsed()
            })
            .collect();
        let index: std::collections::HashMap<&str, usize> = def
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.key.as_str(), i))
            .collect();
        let base: Vec<Duration> = (0..21)
            .map(|_| {
                let t = Instant::now();
                let mut g: DiGraph<(), ()> = DiGraph::with_capacity(n, def.edges.len());
                for _ in 0..n {
                    g.add_node(());
                }
                for e in &def.edges {
                    g.add_edge(
                        NodeIndex::new(index[e.from.as_str()]),
                        NodeIndex::new(index[e.to.as_str()]),
                        (),
                    );
                }
                std::hint::black_box(petgraph::algo::toposort(&g, None).is_ok());
                t.elapsed()
            })
            .collect();
        let (v, b) = (median(runs), median(base));
        println!(
            "{:>8} {:>8} {:>14.2} {:>16.2} {:>6.1}×",
            n,
            def.edges.len(),
            v.as_secs_f64() * 1e3,
            b.as_secs_f64() * 1e3,
            v.as_secs_f64() / b.as_secs_f64()
        );
    }
    println!("\nTarget: validate under 50 ms at 10,000 nodes.");
}
