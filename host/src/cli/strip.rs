//! `ecgnas data plot`: an ECG strip of a WFDB record on ECG paper, as SVG or PNG.
//!
//! The paper is drawn at the standard 25 mm/s and 10 mm/mV: a thin line every millimetre
//! (40 ms, 0.1 mV), a thick one every 5 mm. Each lead gets a 30 mm band, its trace centred on
//! the window's median; beat annotations are written above the first band and rhythm episodes
//! (the aux notes of `+` annotations) drawn as labelled bands above them. Predictions of a
//! model are not drawn yet.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context};
use clap::Args;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::Outcome;
use crate::data::wfdb::record::read_annotations;
use crate::data::wfdb::{Annotation, AnnotationCode, WfdbRecord};

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
const BAND_MM: f64 = 30.0;
const LEFT_MM: f64 = 15.0;
const TOP_MM: f64 = 22.0;
const BOTTOM_MM: f64 = 10.0;

/// Everything one strip shows, in physical units and seconds.
struct Strip {
    title: String,
    from_s: f64,
    seconds: f64,
    /// (lead name, units, samples per second, first sample's time, values in mV; NaN invalid).
    leads: Vec<(String, String, f64, f64, Vec<f32>)>,
    /// (time, symbol) of beat and other annotations.
    marks: Vec<(f64, String)>,
    /// (start, end, rhythm) of rhythm episodes overlapping the strip.
    rhythms: Vec<(f64, f64, String)>,
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
    let strip = build_strip(&record, &annotations, &args)?;
    register_font()?;
    let (w, h) = size_px(&strip);
    let extension = args.out.extension().and_then(|e| e.to_str());
    match extension {
        Some("svg") => {
            let root = SVGBackend::new(&args.out, (w, h)).into_drawing_area();
            draw(&root, &strip)?;
            root.present()
                .map_err(|e| anyhow!("{}: {e}", args.out.display()))?;
        }
        Some("png") => {
            let mut pixels = vec![255u8; w as usize * h as usize * 3];
            {
                let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
                draw(&root, &strip)?;
                root.present()
                    .map_err(|e| anyhow!("drawing the strip: {e}"))?;
            }
            write_png(&args.out, w, h, &pixels)?;
        }
        _ => bail!(
            "{}: the strip is written as .svg or .png",
            args.out.display()
        ),
    }
    Ok(Outcome::Success)
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
    })
}

fn size_px(strip: &Strip) -> (u32, u32) {
    let w_mm = LEFT_MM + strip.seconds * MM_PER_S + 5.0;
    let h_mm = TOP_MM + BAND_MM * strip.leads.len() as f64 + BOTTOM_MM;
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
    let paper_h = BAND_MM * strip.leads.len() as f64;
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
    // Leads.
    for (k, (label, units, rate, t0, values)) in strip.leads.iter().enumerate() {
        // The median sits below the band's middle: QRS complexes rise further than they fall.
        let centre = y0 + BAND_MM * (k as f64 + 0.62);
        let mut finite: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
        finite.sort_by(|a, b| a.total_cmp(b));
        let median = finite.get(finite.len() / 2).copied().unwrap_or(0.0);
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
        let clamp = |y: f64| y.clamp(y0 + BAND_MM * k as f64, y0 + BAND_MM * (k as f64 + 1.0));
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
    Ok(())
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
