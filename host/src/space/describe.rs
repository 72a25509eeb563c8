//! A one-line human summary of a candidate, for logs, tables and reports.
//!
//! `win10s lp40t31 dec2 ma0.6 z | std16k7s2 dw32k5s2d2r6+skip+max | gap d32 sigmoid`:
//! preprocessing in the order it runs (genes set to "none" are left out, the decimation is
//! always shown), then one token per block (`std`/`dw`, channels, `k` kernel, `s` stride,
//! `d` dilation when above 1, `r6` for ReLU6, `+skip`, `+max`/`+avg` pooling), then the head.

use std::fmt;

use super::genes::{
    Activation, Band, Baseline, Block, Candidate, ConvKind, Normalisation, OutputActivation, Pool,
    Window,
};

impl Candidate {
    /// A one-line summary, e.g.
    /// `win10s lp40t31 dec2 ma0.6 z | std16k7s2 dw32k5s2d2r6+skip+max | gap d32 sigmoid`.
    ///
    /// Preprocessing in the order it runs (`win` length or `beat` pre/post with `+rr`, `lp`
    /// cutoff `t` taps, `dec`, `ma` seconds, `z` or `maxabs`; genes set to none are left out,
    /// the decimation is always shown), one token per block (`std`/`dw`, channels, `k` kernel,
    /// `s` stride, `d` dilation when above 1, `r6` for ReLU6, `+skip`, `+max`/`+avg` pooling),
    /// then the head (`gap`, `d` hidden units, the output activation). [`std::fmt::Display`]
    /// writes the same.
    pub fn describe(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pre = &self.preprocessing;
        match pre.window {
            Window::Fixed { length_s } => write!(f, "win{length_s}s")?,
            Window::Beat {
                pre_s,
                post_s,
                rr_intervals,
            } => {
                write!(f, "beat{pre_s}/{post_s}s")?;
                if rr_intervals {
                    f.write_str("+rr")?;
                }
            }
        }
        if let Band::LowPass { cutoff_hz, taps } = pre.band {
            write!(f, " lp{cutoff_hz}t{taps}")?;
        }
        write!(f, " dec{}", pre.decimation)?;
        if let Baseline::MovingAverage { window_s } = pre.baseline {
            write!(f, " ma{window_s}")?;
        }
        match pre.normalisation {
            Normalisation::None => {}
            Normalisation::ZScore => f.write_str(" z")?,
            Normalisation::MaxAbs => f.write_str(" maxabs")?,
        }
        f.write_str(" |")?;
        for block in &self.architecture.blocks {
            write!(f, " {}", BlockToken(block))?;
        }
        let head = &self.architecture.head;
        f.write_str(" | gap")?;
        if let Some(units) = head.hidden {
            write!(f, " d{units}")?;
        }
        match head.output {
            OutputActivation::Sigmoid => f.write_str(" sigmoid"),
            OutputActivation::Softmax => f.write_str(" softmax"),
        }
    }
}

struct BlockToken<'a>(&'a Block);

impl fmt::Display for BlockToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        let kind = match b.kind {
            ConvKind::Standard => "std",
            ConvKind::DepthwiseSeparable => "dw",
        };
        write!(f, "{kind}{}k{}s{}", b.channels, b.kernel, b.stride)?;
        if b.dilation != 1 {
            write!(f, "d{}", b.dilation)?;
        }
        if b.activation == Activation::Relu6 {
            f.write_str("r6")?;
        }
        if b.skip {
            f.write_str("+skip")?;
        }
        match b.pool {
            Pool::None => Ok(()),
            Pool::Max2 => f.write_str("+max"),
            Pool::Avg2 => f.write_str("+avg"),
        }
    }
}
