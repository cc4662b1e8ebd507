//! A drawn chart on a page. The figure is drawn on the server (`api::chart_draw`) and travels
//! with the page's data, so the WASM bundle carries no charting code.

use crate::domain::chart::ChartSvg;
use leptos::prelude::*;

#[component]
pub fn Chart(chart: ChartSvg) -> impl IntoView {
    view! {
        <figure class="chart" aria-label=chart.title.clone()>
            <figcaption>{chart.title.clone()}</figcaption>
            <div class="chart-svg" inner_html=chart.svg></div>
            <p class="sr-only" data-testid="chart-summary">
                {chart.summary}
            </p>
        </figure>
    }
}
