//! Charts drawn as SVG with plotters, on the server only.

use crate::domain::chart::{ChartSvg, LineChart};
use plotters::prelude::*;

// About the size the chart is shown at, so its text reads at the page's scale.
const WIDTH: u32 = 440;
const HEIGHT: u32 = 200;
/// Colour-blind-safe palette (Okabe–Ito), lightened for the dark theme.
const PALETTE: [RGBColor; 5] = [
    RGBColor(86, 180, 233),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(240, 228, 66),
];
/// The theme's panel, line and muted text colours (style/main.css).
const PANEL: RGBColor = RGBColor(0x17, 0x1e, 0x2e);
const LINE: RGBColor = RGBColor(0x27, 0x30, 0x49);
const MUTED: RGBColor = RGBColor(0x9a, 0xa3, 0xb8);

/// Draws `chart` as SVG. An empty window still gets axes, so the page does not jump when
/// the first samples arrive.
pub fn draw(chart: &LineChart) -> ChartSvg {
    let mut svg = String::new();
    if let Err(e) = render(chart, &mut svg) {
        tracing::warn!(error = %e, title = %chart.title, "chart drawing failed");
        svg.clear();
    }
    ChartSvg {
        title: chart.title.clone(),
        svg,
        summary: summary(chart),
    }
}

fn render(chart: &LineChart, out: &mut String) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(out, (WIDTH, HEIGHT)).into_drawing_area();
    let top = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0_f64, f64::max);
    // Headroom above the highest point, and a visible axis when everything is zero.
    let y_max = if top > 0.0 { top * 1.15 } else { 1.0 };
    let (from, to) = if chart.to > chart.from {
        (chart.from, chart.to)
    } else {
        (chart.from, chart.from + 60.0)
    };
    let span = to - from;
    let mut ctx = ChartBuilder::on(&root)
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(56)
        .build_cartesian_2d(from..to, 0.0..y_max)?;
    let unit = chart.unit.clone();
    ctx.configure_mesh()
        .light_line_style(PANEL)
        .bold_line_style(LINE)
        .axis_style(MUTED)
        .label_style(("sans-serif", 12).into_font().color(&MUTED))
        .x_labels(5)
        .y_labels(5)
        .x_label_formatter(&|x| time_label(*x, span))
        .y_label_formatter(&|y| format!("{} {unit}", compact(*y)))
        .draw()?;
    for (i, s) in chart.series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        // Markers too: a lone sample (the first minute of a series) is a point, not a line.
        ctx.draw_series(
            LineSeries::new(s.points.iter().copied(), color.stroke_width(2)).point_size(2),
        )?
        .label(s.name.clone())
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], color.stroke_width(2)));
    }
    if chart.series.len() > 1 {
        ctx.configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(PANEL.mix(0.9))
            .border_style(LINE)
            .label_font(("sans-serif", 12).into_font().color(&MUTED))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// Clock time for short windows, dates for long ones (UTC).
fn time_label(unix: f64, span: f64) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(unix as i64) else {
        return String::new();
    };
    if span <= 2.0 * 86_400.0 {
        format!("{:02}:{:02}", t.hour(), t.minute())
    } else {
        format!("{} {:02}", t.month(), t.day())
    }
}

fn compact(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// "name: latest value, peak value" per series.
fn summary(chart: &LineChart) -> String {
    if chart.series.iter().all(|s| s.points.is_empty()) {
        return format!("{}: no samples yet", chart.title);
    }
    chart
        .series
        .iter()
        .filter_map(|s| {
            let last = s.points.last()?.1;
            let peak = s.points.iter().map(|p| p.1).fold(f64::MIN, f64::max);
            Some(format!(
                "{}: latest {} {u}, peak {} {u}",
                s.name,
                compact(last),
                compact(peak),
                u = chart.unit
            ))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::chart::Series;

    #[test]
    fn draws_lines_axes_and_a_summary() {
        let chart = LineChart {
            title: "CPU".into(),
            unit: "%".into(),
            from: 1_700_000_000.0,
            to: 1_700_003_600.0,
            series: vec![Series {
                name: "host:1".into(),
                points: vec![(1_700_000_000.0, 10.0), (1_700_001_800.0, 40.0)],
            }],
        };
        let out = draw(&chart);
        assert!(out.svg.starts_with("<svg"), "{}", out.svg);
        assert!(out.svg.contains("<polyline"), "the series is drawn");
        assert!(out.svg.contains("22:13"), "clock labels on the x axis");
        assert_eq!(out.summary, "host:1: latest 40 %, peak 40 %");
    }

    #[test]
    fn an_empty_chart_still_has_axes() {
        let chart = LineChart {
            title: "Tokens".into(),
            unit: "/min".into(),
            from: 0.0,
            to: 0.0,
            series: vec![],
        };
        let out = draw(&chart);
        assert!(out.svg.starts_with("<svg"));
        assert!(out.svg.contains("<line") || out.svg.contains("<polyline"));
        assert_eq!(out.summary, "Tokens: no samples yet");
    }
}
