//! Time-series charts as data: what to draw and the drawn figure (SVG markup with a text
//! summary), which travels with a page's data so server rendering and hydration agree.

use serde::{Deserialize, Serialize};

/// One line of a chart: `(unix seconds, value)` points, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// What to draw: the lines over a time window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LineChart {
    pub title: String,
    /// Unit shown on the y axis, e.g. "%" or "MiB".
    pub unit: String,
    /// The window, unix seconds.
    pub from: f64,
    pub to: f64,
    pub series: Vec<Series>,
}

/// A drawn chart: the SVG markup, plus a text summary for screen readers and tests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChartSvg {
    pub title: String,
    pub svg: String,
    pub summary: String,
}
