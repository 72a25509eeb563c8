//! `ecgnas data plot`: an ECG strip of a WFDB record on ECG paper, as SVG or PNG.
//!
//! The paper is drawn at the standard 25 mm/s and 10 mm/mV: a thin line every millimetre
//! (40 ms, 0.1 mV), a thick one every 5 mm. Each lead gets a 30 mm band, its trace centred on
//! the window's median; beat annotations are written above the first band and rhythm episodes
//! (the aux notes of `+` annotations) drawn as labelled bands above them. With `--model`, the
//! model's decision for each beat (beat tasks) or window (window and recording tasks) is
//! written below the paper, green where it is the task's truth and red where it is not: the
//! reference above the trace, the model below it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context};
use clap::Args;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::answers::{answer_all, Answer, Place};
use super::model::Precision;
use super::search::load_task_data;
use super::Outcome;
use crate::data::signal::EcgRecord;
use crate::data::wfdb::record::read_annotations;
use crate::data::wfdb::{Annotation, AnnotationCode, WfdbRecord};
use crate::export::load;

/// The font text is drawn with, compiled in so that PNG output needs no system font.
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-ascii.ttf");

/// Registers [`FONT`] as plotters' `sans-serif` (once); every plot calls this first.
pub(super) fn register_font() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok()
    });
    if ok {
        Ok(())
    } else {
        bail!("the embedded plot font could not be loaded")
    }
}

#[derive(Debug, Args)]
pub(super) struct StripArgs {
    /// The record: its header (`100.hea`) or its path without extension.
    record: PathBuf,
    /// Start of the strip, seconds from the record's start.
    #[arg(long, default_value_t = 0.0)]
    from: f64,
    /// Length of the strip in seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Leads to draw, by name (`MLII,V5`); all leads when absent.
    #[arg(long)]
    leads: Option<String>,
    /// A model folder: its decision for each beat or window of the strip is drawn below it,
    /// against the truth of the model's task.
    #[arg(long)]
    model: Option<PathBuf>,
    /// The file to write: `.svg` or `.png`.
    #[arg(long)]
    out: PathBuf,
}

/// Pixels per millimetre of paper.
const PX_PER_MM: f64 = 4.0;
/// Paper speed and gain.
const MM_PER_S: f64 = 25.0;
const MM_PER_MV: f64 = 10.0;
/// Height of one lead's band, and the margins, in millimetres.
/// The smallest band: 3 mV at 10 mm/mV. A band grows by 5 mm steps, up to [`MAX_BAND_MM`],
/// until its lead's trace fits unclipped at the standard gain.
const BAND_MM: f64 = 30.0;
const MAX_BAND_MM: f64 = 80.0;
/// Where in its band a lead's median sits: QRS complexes rise further than they fall.
const MEDIAN_AT: f64 = 0.62;
const LEFT_MM: f64 = 15.0;
const TOP_MM: f64 = 22.0;
const BOTTOM_MM: f64 = 10.0;
/// Height of one row of model decisions below the time axis.
const DECISION_ROW_MM: f64 = 9.0;
/// Rows that overlapping window decisions are spread over.
const DECISION_ROWS: usize = 3;

/// Everything one strip shows, in physical units and seconds.
pub(super) struct Strip {
    title: String,
    from_s: f64,
    seconds: f64,
    /// (lead name, units, samples per second, first sample's time, values in mV; NaN invalid).
    leads: Vec<(String, String, f64, f64, Vec<f32>)>,
    /// (time, symbol) of beat and other annotations.
    marks: Vec<(f64, String)>,
    /// (start, end, rhythm) of rhythm episodes overlapping the strip.
    rhythms: Vec<(f64, f64, String)>,
    /// A model's decisions on the strip, if a model was given.
    decisions: Vec<Decision>,
    /// A place to shade (the error a strip of `evaluate --plots` is about).
    highlight: Option<Place>,
}

/// A model's decision for one example, as drawn.
pub(super) struct Decision {
    place: Place,
    /// The decision, and for a wrong one the truth.
    predicted: String,
    truth: String,
    correct: bool,
}

impl Decision {
    pub(super) fn of(answer: &Answer) -> Decision {
        let join = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join("+")
            }
        };
        Decision {
            place: answer.place,
            predicted: join(&answer.predicted),
            truth: join(&answer.truth),
            correct: answer.correct(),
        }
    }
}

pub(super) fn run(args: StripArgs) -> anyhow::Result<Outcome> {
    let valid = (0.0..=120.0).contains(&args.seconds) && args.seconds > 0.0 && args.from >= 0.0;
    if !valid {
        bail!("--seconds must be in (0, 120] and --from at least 0");
    }
    let header = match args.record.extension() {
        Some(e) if e == "hea" => args.record.clone(),
        _ => args.record.with_extension("hea"),
    };
    let record = WfdbRecord::read(&header)?;
    let atr = record.annotation_path("atr");
    let annotations = if atr.is_file() {
        read_annotations(&atr)?
    } else {
        Vec::new()
    };
    let mut strip = build_strip(&record, &annotations, &args)?;
    if let Some(dir) = &args.model {
        strip.decisions = record_decisions(dir, &header)?
            .into_iter()
            .filter(|d| overlaps(d.place, strip.from_s, strip.from_s + strip.seconds))
            .collect();
        strip.title += &format!("  model {}", dir.display());
    }
    write_strip(&strip, &args.out)?;
    Ok(Outcome::Success)
}

/// The decisions of the model in `dir` on every example of its task in one record.
fn record_decisions(dir: &Path, header: &Path) -> anyhow::Result<Vec<Decision>> {
    let model = load(dir)?;
    let task = model.manifest.task_kind()?;
    let record = header.display().to_string();
    let (_, mut adc) = load_task_data(task, &record, model.manifest.input.fs, 0, None)
        .with_context(|| format!("{record}: reading it for task {task} of {}", dir.display()))?;
    let answered = answer_all(&model, &mut adc, Precision::F32)?;
    let answers = answered.answers(&model, adc.fs_hz)?;
    Ok(answers.iter().map(Decision::of).collect())
}

fn overlaps(place: Place, from: f64, to: f64) -> bool {
    match place {
        Place::Beat(t) => (from..to).contains(&t),
        Place::Span(s, e) => e > from && s < to,
    }
}

/// Writes `strip` as SVG or PNG, by `out`'s extension.
pub(super) fn write_strip(strip: &Strip, out: &Path) -> anyhow::Result<()> {
    register_font()?;
    let (w, h) = size_px(strip);
    let extension = out.extension().and_then(|e| e.to_str());
    match extension {
        Some("svg") => {
            let root = SVGBackend::new(out, (w, h)).into_drawing_area();
            draw(&root, strip)?;
            root.present()
                .map_err(|e| anyhow!("{}: {e}", out.display()))?;
        }
        Some("png") => {
            let mut pixels = vec![255u8; w as usize * h as usize * 3];
            {
                let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
                draw(&root, strip)?;
                root.present()
                    .map_err(|e| anyhow!("drawing the strip: {e}"))?;
            }
            write_png(out, w, h, &pixels)?;
        }
        _ => bail!("{}: the strip is written as .svg or .png", out.display()),
    }
    Ok(())
}

/// A strip of a task's record (all its task leads, at the record's rate) around one example
/// the model got wrong: the task's truth for each example above the paper, every decision of
/// the model on the strip below it, the error shaded.
pub(super) fn error_strip(
    record: &EcgRecord,
    truths: &[(f64, String)],
    answers: &[&Answer],
    error: &Answer,
    class: &str,
) -> Strip {
    let duration = record.n_samples() as f64 / record.fs;
    // A beat gets 6 s around it; a window or recording its span, at most 30 s.
    let (from, seconds) = match error.place {
        Place::Beat(t) => ((t - 3.0).max(0.0), 6.0),
        Place::Span(s, e) => (s.max(0.0), (e - s).clamp(1.0, 30.0)),
    };
    let seconds = seconds.min(duration - from).max(0.0);
    let end = from + seconds;
    let first = (from * record.fs).floor() as usize;
    let last = ((end * record.fs).ceil() as usize).min(record.n_samples());
    let leads = record
        .leads
        .iter()
        .map(|lead| {
            let scale = if matches!(lead.units.as_str(), "uV" | "µV") {
                1e-3
            } else {
                1.0
            };
            let values = lead.samples[first.min(last)..last]
                .iter()
                .map(|v| v * scale)
                .collect();
            (
                lead.name.clone(),
                lead.units.clone(),
                record.fs,
                first as f64 / record.fs,
                values,
            )
        })
        .collect();
    Strip {
        title: format!(
            "{}  {from:.2}-{end:.2} s  error on {class}: true {}, model {}",
            record.id,
            Decision::of(error).truth,
            Decision::of(error).predicted
        ),
        from_s: from,
        seconds,
        leads,
        marks: truths
            .iter()
            .filter(|(t, _)| (from..end).contains(t))
            .cloned()
            .collect(),
        rhythms: Vec::new(),
        decisions: answers
            .iter()
            .filter(|a| overlaps(a.place, from, end))
            .map(|a| Decision::of(a))
            .collect(),
        highlight: Some(error.place),
    }
}

fn build_strip(
    record: &WfdbRecord,
    annotations: &[Annotation],
    args: &StripArgs,
) -> anyhow::Result<Strip> {
    let header = &record.header;
    let name = record.header_path.display().to_string();
    let duration = record.n_samples() as f64 / header.fs;
    if args.from >= duration {
        bail!(
            "{name}: --from {} s is past the record's end ({duration:.2} s)",
            args.from
        );
    }
    let seconds = args.seconds.min(duration - args.from);
    let wanted: Vec<usize> = match &args.leads {
        None => (0..header.signals.len()).collect(),
        Some(list) => list
            .split(',')
            .map(|lead| {
                header.signal_index(lead.trim()).with_context(|| {
                    let names: Vec<&str> = header
                        .signals
                        .iter()
                        .map(|s| s.description.as_str())
                        .collect();
                    format!("{name}: no lead {lead:?} (leads: {})", names.join(", "))
                })
            })
            .collect::<anyhow::Result<_>>()?,
    };
    let mut leads = Vec::new();
    for i in wanted {
        let spec = &header.signals[i];
        let rate = header.fs * f64::from(spec.samples_per_frame);
        let first = (args.from * rate).floor() as usize;
        let last = (((args.from + seconds) * rate).ceil() as usize).min(record.samples[i].len());
        let physical = record.physical(i);
        // Values in mV where the unit allows; other units are drawn as they are.
        let scale = match spec.units.as_str() {
            "uV" | "µV" => 1e-3,
            _ => 1.0,
        };
        let values: Vec<f32> = physical[first..last].iter().map(|v| v * scale).collect();
        let label = if spec.description.is_empty() {
            format!("signal {i}")
        } else {
            spec.description.clone()
        };
        let units = if spec.calibrated {
            spec.units.clone()
        } else {
            format!("{} (uncalibrated)", spec.units)
        };
        leads.push((label, units, rate, first as f64 / rate, values));
    }
    let end = args.from + seconds;
    let mut marks = Vec::new();
    let mut rhythms: Vec<(f64, f64, String)> = Vec::new();
    let mut open: Option<(f64, String)> = None;
    for a in annotations {
        let t = a.sample as f64 / header.fs;
        if a.code == AnnotationCode::RHYTHM {
            if let Some((start, rhythm)) = open.take() {
                rhythms.push((start, t, rhythm));
            }
            open = Some((t, a.aux.trim_start_matches('(').to_string()));
        } else if (args.from..end).contains(&t) {
            marks.push((t, a.code.symbol()));
        }
    }
    if let Some((start, rhythm)) = open {
        rhythms.push((start, duration, rhythm));
    }
    rhythms.retain(|(s, e, _)| *e > args.from && *s < end);
    Ok(Strip {
        title: format!(
            "{}  {:.2}-{:.2} s  25 mm/s  10 mm/mV",
            header.record_name,
            args.from,
            args.from + seconds
        ),
        from_s: args.from,
        seconds,
        leads,
        marks,
        rhythms,
        decisions: Vec::new(),
        highlight: None,
    })
}

/// Rows of decisions below the time axis: one for beats, up to [`DECISION_ROWS`] for windows.
fn decision_rows(strip: &Strip) -> f64 {
    strip
        .decisions
        .iter()
        .map(|d| match d.place {
            Place::Beat(_) => 1.5,
            Place::Span(..) => DECISION_ROWS as f64,
        })
        .fold(0.0, f64::max)
}

/// The median of a lead's valid values.
fn median(values: &[f32]) -> f32 {
    let mut finite: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
    finite.sort_by(|a, b| a.total_cmp(b));
    finite.get(finite.len() / 2).copied().unwrap_or(0.0)
}

/// The band height every lead of the strip fits in (mm), at least [`BAND_MM`].
fn band_mm(strip: &Strip) -> f64 {
    let mut need = BAND_MM;
    for (_, _, _, _, values) in &strip.leads {
        let m = median(values);
        for v in values.iter().filter(|v| v.is_finite()) {
            let mm = f64::from(v - m) * MM_PER_MV;
            // 2 mm of margin at either edge.
            let span = if mm > 0.0 {
                (mm + 2.0) / MEDIAN_AT
            } else {
                (2.0 - mm) / (1.0 - MEDIAN_AT)
            };
            need = need.max(span);
        }
    }
    ((need / 5.0).ceil() * 5.0).min(MAX_BAND_MM)
}

fn size_px(strip: &Strip) -> (u32, u32) {
    let w_mm = LEFT_MM + strip.seconds * MM_PER_S + 5.0;
    let h_mm = TOP_MM
        + band_mm(strip) * strip.leads.len() as f64
        + BOTTOM_MM
        + DECISION_ROW_MM * decision_rows(strip);
    (
        (w_mm * PX_PER_MM).ceil() as u32,
        (h_mm * PX_PER_MM).ceil() as u32,
    )
}

fn px(mm: f64) -> i32 {
    (mm * PX_PER_MM).round() as i32
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, strip: &Strip) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing the strip: {e}");
    root.fill(&WHITE).map_err(e)?;
    let paper_w = strip.seconds * MM_PER_S;
    let band = band_mm(strip);
    let paper_h = band * strip.leads.len() as f64;
    let (x0, y0) = (LEFT_MM, TOP_MM);
    let minor = RGBColor(250, 200, 200);
    let major = RGBColor(230, 120, 120);
    // Minor lines first, major lines over them.
    for pass in [false, true] {
        let (color, width) = if pass { (major, 2) } else { (minor, 1) };
        let mut mm = 0.0;
        while mm <= paper_w + 1e-9 {
            let is_major = (mm.round() as i64) % 5 == 0;
            if is_major == pass {
                root.draw(&PathElement::new(
                    vec![(px(x0 + mm), px(y0)), (px(x0 + mm), px(y0 + paper_h))],
                    color.stroke_width(width),
                ))
                .map_err(e)?;
            }
            mm += 1.0;
        }
        let mut mm = 0.0;
        while mm <= paper_h + 1e-9 {
            let is_major = (mm.round() as i64) % 5 == 0;
            if is_major == pass {
                root.draw(&PathElement::new(
                    vec![(px(x0), px(y0 + mm)), (px(x0 + paper_w), px(y0 + mm))],
                    color.stroke_width(width),
                ))
                .map_err(e)?;
            }
            mm += 1.0;
        }
    }
    let font = |size: f64| ("sans-serif", size * PX_PER_MM).into_font();
    root.draw(&Text::new(
        strip.title.clone(),
        (px(1.0), px(1.0)),
        font(3.5),
    ))
    .map_err(e)?;
    let x_of = |t: f64| px(x0 + (t - strip.from_s) * MM_PER_S);
    // Rhythm episodes: a band from 7 to 12 mm, labelled at its visible start.
    let palette = [
        RGBColor(120, 170, 230),
        RGBColor(240, 180, 90),
        RGBColor(140, 200, 140),
        RGBColor(200, 150, 210),
    ];
    for (k, (start, end, rhythm)) in strip.rhythms.iter().enumerate() {
        let s = start.max(strip.from_s);
        let t = end.min(strip.from_s + strip.seconds);
        let color = palette[k % palette.len()];
        root.draw(&Rectangle::new(
            [(x_of(s), px(7.0)), (x_of(t), px(12.0))],
            color.mix(0.6).filled(),
        ))
        .map_err(e)?;
        root.draw(&Text::new(
            rhythm.clone(),
            (x_of(s) + px(0.8), px(7.6)),
            font(3.0),
        ))
        .map_err(e)?;
    }
    // Beat annotations: the symbol above the paper, a tick down to it.
    for (t, symbol) in &strip.marks {
        let x = x_of(*t);
        let color = if symbol == "N" { BLACK } else { RED };
        root.draw(&Text::new(
            symbol.clone(),
            (x - px(0.8), px(14.5)),
            font(3.2).color(&color),
        ))
        .map_err(e)?;
        root.draw(&PathElement::new(
            vec![(x, px(19.0)), (x, px(y0))],
            color.stroke_width(1),
        ))
        .map_err(e)?;
    }
    let strip_end = strip.from_s + strip.seconds;
    if let Some(place) = strip.highlight {
        let (s, t) = match place {
            Place::Beat(t) => (t - 0.35, t + 0.35),
            Place::Span(s, t) => (s, t),
        };
        root.draw(&Rectangle::new(
            [
                (x_of(s.max(strip.from_s)), px(y0)),
                (x_of(t.min(strip_end)), px(y0 + paper_h)),
            ],
            RGBColor(255, 220, 0).mix(0.25).filled(),
        ))
        .map_err(e)?;
    }
    // Leads.
    for (k, (label, units, rate, t0, values)) in strip.leads.iter().enumerate() {
        let centre = y0 + band * (k as f64 + MEDIAN_AT);
        let median = median(values);
        root.draw(&Text::new(
            label.clone(),
            (px(1.0), px(centre - 3.0)),
            font(3.5),
        ))
        .map_err(e)?;
        root.draw(&Text::new(
            units.clone(),
            (px(1.0), px(centre + 1.5)),
            font(2.5),
        ))
        .map_err(e)?;
        let clamp = |y: f64| y.clamp(y0 + band * k as f64, y0 + band * (k as f64 + 1.0));
        let mut run: Vec<(i32, i32)> = Vec::new();
        let flush = |run: &mut Vec<(i32, i32)>| -> anyhow::Result<()> {
            if run.len() > 1 {
                root.draw(&PathElement::new(
                    std::mem::take(run),
                    BLACK.stroke_width(2),
                ))
                .map_err(e)?;
            }
            run.clear();
            Ok(())
        };
        for (j, v) in values.iter().enumerate() {
            if !v.is_finite() {
                flush(&mut run)?;
                continue;
            }
            let t = t0 + j as f64 / rate;
            let y = clamp(centre - f64::from(v - median) * MM_PER_MV);
            run.push((x_of(t), px(y)));
        }
        flush(&mut run)?;
    }
    // Time axis: seconds from the record's start, every second.
    let first = strip.from_s.ceil() as i64;
    let last = (strip.from_s + strip.seconds).floor() as i64;
    for s in first..=last {
        let x = x_of(s as f64);
        root.draw(&Text::new(
            format!("{s} s"),
            (x - px(2.0), px(y0 + paper_h + 2.0)),
            font(3.0),
        ))
        .map_err(e)?;
    }
    draw_decisions(root, strip, y0 + paper_h + BOTTOM_MM - 2.0)
}

/// The model's decisions, in rows from `top` (mm) down: for beats the decided class under each
/// beat (and the truth under a wrong one), for windows a band over each window's span.
fn draw_decisions<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    strip: &Strip,
    top: f64,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    if strip.decisions.is_empty() {
        return Ok(());
    }
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing the strip: {e}");
    let font = |size: f64| ("sans-serif", size * PX_PER_MM).into_font();
    let x_of = |t: f64| px(LEFT_MM + (t - strip.from_s) * MM_PER_S);
    let right = RGBColor(0, 140, 60);
    let wrong = RGBColor(210, 0, 0);
    let strip_end = strip.from_s + strip.seconds;
    root.draw(&Text::new("model", (px(1.0), px(top + 1.5)), font(3.0)))
        .map_err(e)?;
    let legend = match strip.decisions.first().map(|d| d.place) {
        Some(Place::Beat(_)) => {
            "model below: green agrees with the truth, red does not (truth under it)"
        }
        _ => "model below: green agrees with the truth, red does not (truth in brackets)",
    };
    root.draw(&Text::new(
        legend,
        (px(LEFT_MM), px(4.5)),
        font(2.6).color(&RGBColor(90, 90, 90)),
    ))
    .map_err(e)?;
    // Window rows: each band goes to the first row free at its start.
    let mut row_end = [f64::NEG_INFINITY; DECISION_ROWS];
    let mut spans: Vec<&Decision> = strip.decisions.iter().collect();
    spans.sort_by(|a, b| start_of(a.place).total_cmp(&start_of(b.place)));
    for (k, d) in spans.into_iter().enumerate() {
        let color = if d.correct { right } else { wrong };
        match d.place {
            Place::Beat(t) => {
                let x = x_of(t);
                root.draw(&Text::new(
                    d.predicted.clone(),
                    (x - px(0.8), px(top + 1.0)),
                    font(3.2).color(&color),
                ))
                .map_err(e)?;
                if !d.correct {
                    root.draw(&Text::new(
                        d.truth.clone(),
                        (x - px(0.8), px(top + 5.0)),
                        font(2.6).color(&RGBColor(90, 90, 90)),
                    ))
                    .map_err(e)?;
                }
            }
            Place::Span(s, t) => {
                let row = row_end
                    .iter()
                    .position(|&end| end <= s + 1e-9)
                    .unwrap_or(k % DECISION_ROWS);
                row_end[row] = t;
                let y = top + DECISION_ROW_MM * row as f64;
                let (xs, xt) = (x_of(s.max(strip.from_s)), x_of(t.min(strip_end)));
                root.draw(&Rectangle::new(
                    [(xs, px(y + 0.5)), (xt, px(y + DECISION_ROW_MM - 1.0))],
                    color.mix(0.3).filled(),
                ))
                .map_err(e)?;
                let text = if d.correct {
                    d.predicted.clone()
                } else {
                    format!("{} (true {})", d.predicted, d.truth)
                };
                root.draw(&Text::new(
                    text,
                    (xs + px(0.8), px(y + 1.5)),
                    font(3.0).color(&color),
                ))
                .map_err(e)?;
            }
        }
    }
    Ok(())
}

fn start_of(place: Place) -> f64 {
    match place {
        Place::Beat(t) => t,
        Place::Span(s, _) => s,
    }
}

/// Writes RGB pixels as a PNG file.
fn write_png(path: &Path, w: u32, h: u32, pixels: &[u8]) -> anyhow::Result<()> {
    let name = path.display().to_string();
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {name}"))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder
        .write_header()
        .with_context(|| format!("cannot write {name}"))?;
    writer
        .write_image_data(pixels)
        .with_context(|| format!("cannot write {name}"))?;
    writer
        .finish()
        .with_context(|| format!("cannot write {name}"))?;
    Ok(())
}
