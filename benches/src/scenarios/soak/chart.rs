//! The soak's samples as CSV and as an SVG chart (plotters, SVG backend
//! only): one panel per measure, the warm-up marked and the fit drawn.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::stats::Fit;
use crate::Res;

/// One 10 s sample of the gateway.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// Seconds since the load began.
    pub t_s: f64,
    pub rss_kb: u64,
    pub fds: u64,
    pub threads: u64,
    /// Async calls accepted and not finished, from the gateway's metrics.
    pub async_backlog: f64,
    /// Async calls the harness still waits a callback for.
    pub pending_callbacks: u64,
    /// Successful operations so far (calls, callbacks, churn, scales, follows).
    pub ok: u64,
    pub errors_explained: u64,
    pub errors_unexplained: u64,
}

impl Sample {
    pub fn rss_mib(&self) -> f64 {
        self.rss_kb as f64 / 1024.0
    }
}

/// The CSV of `samples`, with a header line.
pub fn csv(samples: &[Sample]) -> String {
    let mut out = String::from(
        "t_s,rss_mib,fds,threads,async_backlog,pending_callbacks,ok_total,errors_explained,errors_unexplained\n",
    );
    for s in samples {
        let _ = writeln!(
            out,
            "{:.1},{:.2},{},{},{},{},{},{},{}",
            s.t_s,
            s.rss_mib(),
            s.fds,
            s.threads,
            s.async_backlog,
            s.pending_callbacks,
            s.ok,
            s.errors_explained,
            s.errors_unexplained
        );
    }
    out
}

/// One panel: a measure over time, with its fit after the warm-up.
pub struct Panel<'a> {
    pub title: &'a str,
    pub value: fn(&Sample) -> f64,
    pub fit: Option<Fit>,
}

/// Draws `panels` of `samples` (minutes on the x axis), the warm-up ending
/// at `warmup_s`, into an SVG file at `path`.
pub fn svg(path: &Path, title: &str, samples: &[Sample], warmup_s: f64, panels: &[Panel<'_>]) -> Res<()> {
    let height = 60 + 220 * panels.len() as u32;
    let root = SVGBackend::new(path, (960, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let root = root.titled(title, ("sans-serif", 22)).map_err(|e| e.to_string())?;
    let areas = root.split_evenly((panels.len(), 1));
    let end_min = samples.last().map_or(1.0, |s| s.t_s / 60.0).max(0.1);
    let warmup_min = warmup_s / 60.0;
    for (panel, area) in panels.iter().zip(&areas) {
        let values: Vec<(f64, f64)> = samples.iter().map(|s| (s.t_s / 60.0, (panel.value)(s))).collect();
        let (lo, hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
        let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
        let pad = ((hi - lo) * 0.15).max(hi.abs() * 0.02).max(0.5);
        let (y0, y1) = ((lo - pad).max(0.0), hi + pad);
        let mut chart = ChartBuilder::on(area)
            .caption(panel.title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..end_min, y0..y1)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("minutes")
            .x_labels(10)
            .y_labels(5)
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(warmup_min, y0), (warmup_min, y1)],
                ShapeStyle::from(&RGBColor(160, 160, 160)).stroke_width(1),
            )))
            .map_err(|e| e.to_string())?;
        chart.draw_series(LineSeries::new(values, BLUE.stroke_width(2))).map_err(|e| e.to_string())?;
        if let Some(fit) = panel.fit {
            let at = |m: f64| fit.intercept + fit.slope * m * 60.0;
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(warmup_min, at(warmup_min)), (end_min, at(end_min))],
                    RED.stroke_width(2),
                )))
                .map_err(|e| e.to_string())?;
        }
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}
