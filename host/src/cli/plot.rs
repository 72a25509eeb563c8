//! SVG scatter plots for reports (quality against latency), drawn with plotters.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use clap::Args;
use plotters::prelude::*;

use super::Outcome;

#[derive(Debug, Args)]
pub(super) struct PlotArgs {
    /// A CSV file with a header row.
    csv: PathBuf,
    /// The column on the x axis (log scale; positive values), e.g. `latency_ms`.
    #[arg(long)]
    x: String,
    /// The column on the y axis, e.g. `quality`.
    #[arg(long)]
    y: String,
    /// The column whose values name the series (one colour each).
    #[arg(long)]
    group: String,
    /// The plot's title.
    #[arg(long, default_value = "")]
    title: String,
    /// The SVG file to write.
    #[arg(long)]
    out: PathBuf,
}

pub(super) fn run(args: PlotArgs) -> anyhow::Result<Outcome> {
    let name = args.csv.display().to_string();
    let mut reader =
        csv::Reader::from_path(&args.csv).with_context(|| format!("cannot read {name}"))?;
    let headers = reader
        .headers()
        .with_context(|| format!("{name}: no header row"))?
        .clone();
    let column = |wanted: &str| {
        headers
            .iter()
            .position(|h| h == wanted)
            .with_context(|| format!("{name}: no column {wanted:?} (columns: {headers:?})"))
    };
    let (xi, yi, gi) = (column(&args.x)?, column(&args.y)?, column(&args.group)?);
    let mut series: Vec<Series> = Vec::new();
    for (row, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{name}: row {}", row + 2))?;
        let number = |i: usize| -> anyhow::Result<f64> {
            let text = record.get(i).unwrap_or("");
            text.trim()
                .parse()
                .with_context(|| format!("{name}: row {}: {text:?} is not a number", row + 2))
        };
        let (x, y) = (number(xi)?, number(yi)?);
        if x <= 0.0 {
            bail!(
                "{name}: row {}: {} must be positive on a log axis",
                row + 2,
                args.x
            );
        }
        let group = record.get(gi).unwrap_or("").to_string();
        match series.iter_mut().find(|s| s.name == group) {
            Some(s) => s.points.push((x, y)),
            None => series.push(Series {
                name: group,
                points: vec![(x, y)],
                mark: Mark::Dot,
            }),
        }
    }
    scatter_svg(&args.out, &args.title, &args.x, &args.y, &series)?;
    Ok(Outcome::Success)
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// A small filled dot per point.
    Dot,
    /// A larger ring per point (to single out points that also appear as dots).
    Ring,
    /// A line through the points in order, no marks (a front).
    Line,
}

/// One set of points, drawn in its own colour with a legend entry.
pub struct Series {
    /// Legend text.
    pub name: String,
    /// `(x, y)` points; for a line, in drawing order.
    pub points: Vec<(f64, f64)>,
    /// How it is drawn.
    pub mark: Mark,
}

/// A scatter of `series`, drawn in order, written to `path`. The x axis is logarithmic when
/// the values span more than a decade and a half (latencies often do), linear otherwise.
pub fn scatter_svg(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> anyhow::Result<()> {
    let usable = |&(x, y): &(f64, f64)| x.is_finite() && x > 0.0 && y.is_finite();
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(usable)
    {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        // Nothing to show: an empty frame, so the report's link still opens.
        (x0, x1, y0, y1) = (1.0, 10.0, 0.0, 1.0);
    }
    // Room above the points for the legend, so that it hides none.
    let pad = ((y1 - y0) * 0.08).max(0.01);
    let room = (y1 - y0).max(0.05) * 0.06 * (series.len() as f64 + 1.0);
    let y = (y0 - pad)..(y1 + pad + room);
    let series: Vec<Series> = series
        .iter()
        .map(|s| Series {
            name: s.name.clone(),
            points: s.points.iter().copied().filter(usable).collect(),
            mark: s.mark,
        })
        .collect();
    super::strip::register_font()?;
    let root = SVGBackend::new(path, (860, 540)).into_drawing_area();
    let drawn = if x1 / x0 > 30.0 {
        draw(
            &root,
            ((x0 / 1.3)..(x1 * 1.3)).log_scale(),
            y,
            title,
            x_label,
            y_label,
            &series,
        )
    } else {
        let xpad = ((x1 - x0) * 0.08).max(x0 * 0.05);
        let x = (x0 - xpad).max(0.0)..(x1 + xpad);
        draw(&root, x, y, title, x_label, y_label, &series)
    };
    drawn.map_err(|e| anyhow!("cannot draw {}: {e}", path.display()))
}

/// The chart on `root` with an x axis of any kind.
fn draw<X>(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    x: X,
    y: std::ops::Range<f64>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<(), String>
where
    X: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
    X::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
{
    let e = |e: &dyn std::fmt::Display| e.to_string();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(x, y)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .draw()
        .map_err(|x| e(&x))?;
    for (i, s) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let drawn = match s.mark {
            Mark::Dot => chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 4, color.filled())))
                .map_err(|x| e(&x))?
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled())),
            Mark::Ring => chart
                .draw_series(
                    s.points
                        .iter()
                        .map(|&p| Circle::new(p, 7, color.stroke_width(2))),
                )
                .map_err(|x| e(&x))?
                .legend(move |(x, y)| Circle::new((x + 10, y), 6, color.stroke_width(2))),
            Mark::Line => chart
                .draw_series(LineSeries::new(s.points.clone(), color.stroke_width(2)))
                .map_err(|x| e(&x))?
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color)),
        };
        drawn.label(s.name.as_str());
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_an_svg_with_every_series_in_the_legend() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plot.svg");
        let series = [
            Series {
                name: "trials".into(),
                points: vec![(1.0, 0.5), (20.0, 0.7), (300.0, 0.9)],
                mark: Mark::Dot,
            },
            Series {
                name: "Pareto front".into(),
                points: vec![(1.0, 0.5), (300.0, 0.9)],
                mark: Mark::Line,
            },
        ];
        scatter_svg(&path, "quality", "latency (ms)", "F1", &series).expect("plot");
        let svg = std::fs::read_to_string(&path).expect("read");
        assert!(
            svg.starts_with("<svg"),
            "not an SVG: {}",
            &svg[..40.min(svg.len())]
        );
        assert!(svg.contains("Pareto front") && svg.contains("trials"));
        // One circle per dot plus its legend entry; the line's points have none.
        assert_eq!(svg.matches("<circle").count(), 3 + 1);
        assert!(svg.contains("<polyline"), "the front is not joined");
    }
}
