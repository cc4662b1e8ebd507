use crate::domain::dag_view::{DagLayout, NODE_H, NODE_W};
use leptos::prelude::*;

/// A DAG drawn from its layout: prerequisites above dependents, each node coloured by its
/// status (`data-status`, styled in CSS) so a refetch after an event recolours it in place.
#[component]
pub fn DagView(
    layout: DagLayout,
    /// `(key, status)` per node, in the layout's order.
    nodes: Vec<(String, &'static str)>,
) -> impl IntoView {
    let edges = layout
        .edges
        .iter()
        .filter_map(|&(from, to)| {
            let a = layout.nodes.get(from)?;
            let b = layout.nodes.get(to)?;
            Some(view! {
                <line
                    class="dag-edge"
                    x1=a.0 + NODE_W / 2.0
                    y1=a.1 + NODE_H
                    x2=b.0 + NODE_W / 2.0
                    y2=b.1
                    marker-end="url(#dag-arrow)"
                ></line>
            })
        })
        .collect_view();
    let boxes = nodes
        .into_iter()
        .zip(layout.nodes.iter().copied())
        .map(|((key, status), (x, y))| {
            let label = key.clone();
            view! {
                <g class="dag-node" data-key=key data-status=status>
                    <rect x=x y=y width=NODE_W height=NODE_H rx="6"></rect>
                    <text x=x + 10.0 y=y + 17.0 class="dag-key">
                        {label}
                    </text>
                    <text x=x + 10.0 y=y + 32.0 class="dag-status">
                        {status.replace('_', " ")}
                    </text>
                </g>
            }
        })
        .collect_view();
    view! {
        <figure class="dag" aria-label="Subtask graph">
            <svg
                viewBox=format!("0 0 {} {}", layout.width, layout.height)
                width=layout.width
                role="img"
            >
                <defs>
                    <marker
                        id="dag-arrow"
                        viewBox="0 0 10 10"
                        refX="10"
                        refY="5"
                        markerWidth="7"
                        markerHeight="7"
                        orient="auto-start-reverse"
                    >
                        <path d="M 0 0 L 10 5 L 0 10 z" class="dag-arrow"></path>
                    </marker>
                </defs>
                {edges}
                {boxes}
            </svg>
        </figure>
    }
}
