//! Compound scaling (EfficientNet, Tan & Le 2019) of one found network into a family.
//!
//! A base candidate grows along three axes together, by one exponent `phi`:
//! - depth: `alpha^phi` times the blocks (each block repeated as an EfficientNet stage is: the
//!   first copy keeps its stride and pooling, the repeats run at stride 1 with an identity
//!   shortcut);
//! - width: `beta^phi` times the channels of every block and of the head's hidden layer;
//! - resolution: `gamma^phi` times the samples the network sees: first a higher rate (a smaller
//!   decimation, when the factor reaches it), then a longer window for what is left.
//!
//! In 1-D the MACs of a convolution grow linearly with the input length, not with its square
//! as for images, so the constraint that doubles the MACs per unit of `phi` is
//! `alpha * beta^2 * gamma ~ 2` (EfficientNet's `alpha * beta^2 * gamma^2 ~ 2` is the 2-D form).
//! Genes stay inside what the firmware and the default space take: 1 to 8 blocks, 4 to 64
//! channels in steps of 4, decimation 1, 2 or 4.

use serde::{Deserialize, Serialize};

use crate::cost::{estimate, CostEstimate, Profile};
use crate::space::{Block, Candidate, Pool, Window};

/// The most blocks a candidate has.
const MAX_BLOCKS: usize = 8;
/// Channel counts stay multiples of this, from it up to [`MAX_CHANNELS`].
const CHANNEL_STEP: usize = 4;
/// The widest block.
const MAX_CHANNELS: usize = 64;
/// The longest fixed window, seconds.
const MAX_WINDOW_S: f64 = 60.0;
/// The widest beat window: seconds before and from the fiducial point.
const MAX_BEAT_S: (f64, f64) = (0.5, 1.0);

/// The three scaling bases.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Coefficients {
    /// Depth base.
    pub alpha: f64,
    /// Width base.
    pub beta: f64,
    /// Resolution base.
    pub gamma: f64,
}

impl Coefficients {
    /// `alpha * beta^2 * gamma`: how many times the MACs grow per unit of `phi`.
    pub fn mac_growth(&self) -> f64 {
        self.alpha * self.beta * self.beta * self.gamma
    }
}

/// The grid searched for the bases: pairs `(alpha, beta)` with `gamma` solving
/// `alpha * beta^2 * gamma = 2`, ordered so that the first `n` spread over the three axes
/// (depth-heavy, width-heavy, resolution-heavy, balanced, ...).
pub fn coefficient_grid(n: usize) -> Vec<Coefficients> {
    const PAIRS: [(f64, f64); 9] = [
        (1.2, 1.1),  // balanced (EfficientNet-B0's alpha and beta)
        (1.6, 1.05), // depth
        (1.0, 1.3),  // width
        (1.1, 1.05), // resolution
        (1.4, 1.1),
        (1.2, 1.2),
        (1.0, 1.15),
        (1.3, 1.0),
        (1.8, 1.0),
    ];
    PAIRS
        .iter()
        .map(|&(alpha, beta)| Coefficients {
            alpha,
            beta,
            gamma: 2.0 / (alpha * beta * beta),
        })
        .take(n)
        .collect()
}

/// `base` scaled by `coefficients` to the power `phi` (`phi = 0` gives `base` back).
pub fn scale(base: &Candidate, coefficients: &Coefficients, phi: f64) -> Candidate {
    let depth = coefficients.alpha.powf(phi);
    let width = coefficients.beta.powf(phi);
    let resolution = coefficients.gamma.powf(phi);
    let mut out = base.clone();
    out.architecture.blocks = scaled_blocks(&base.architecture.blocks, depth, width);
    out.architecture.head.hidden = base
        .architecture
        .head
        .hidden
        .map(|units| round_channels(units as f64 * width));
    scale_resolution(&mut out, resolution);
    out
}

fn round_channels(channels: f64) -> usize {
    let steps = (channels / CHANNEL_STEP as f64).round().max(1.0) as usize;
    (steps * CHANNEL_STEP).min(MAX_CHANNELS)
}

/// The blocks `depth` times as many (1 to [`MAX_BLOCKS`]), each `width` times as wide.
fn scaled_blocks(blocks: &[Block], depth: f64, width: f64) -> Vec<Block> {
    let n = blocks.len();
    let target = ((n as f64 * depth).round() as usize).clamp(1, MAX_BLOCKS);
    let widened: Vec<Block> = blocks
        .iter()
        .map(|b| Block {
            channels: round_channels(b.channels as f64 * width),
            ..b.clone()
        })
        .collect();
    if target >= n {
        // Block j is repeated as often as its share of the target: the first copy as it was,
        // the repeats at stride 1 without pooling, with an identity shortcut (same channels,
        // same length), as the repeated layers of an EfficientNet stage.
        let mut out = Vec::with_capacity(target);
        for (j, block) in widened.iter().enumerate() {
            let repeats = (j + 1) * target / n - j * target / n;
            out.push(block.clone());
            for _ in 1..repeats {
                out.push(Block {
                    stride: 1,
                    pool: Pool::None,
                    skip: true,
                    ..block.clone()
                });
            }
        }
        out
    } else {
        // Fewer blocks: keep evenly spaced ones, the last among them (it feeds the head).
        (0..target)
            .map(|i| {
                let j = if target == 1 {
                    n - 1
                } else {
                    i * (n - 1) / (target - 1)
                };
                widened[j].clone()
            })
            .collect()
    }
}

/// `resolution` times the samples: the rate first (decimation 4, 2, 1, as far as the factor
/// reaches), then the window's length for what is left.
fn scale_resolution(candidate: &mut Candidate, resolution: f64) {
    let pre = &mut candidate.preprocessing;
    let old = pre.decimation.max(1);
    // The decimation whose rate change is nearest to the factor, in log terms.
    let decimation = [1usize, 2, 4]
        .into_iter()
        .min_by(|&a, &b| {
            let miss = |d: usize| ((old as f64 / d as f64).ln() - resolution.ln()).abs();
            miss(a).total_cmp(&miss(b))
        })
        .unwrap_or(old);
    let rest = resolution * decimation as f64 / old as f64;
    pre.decimation = decimation;
    match &mut pre.window {
        Window::Fixed { length_s } => {
            // Half-second steps, at least one second.
            *length_s = ((*length_s * rest * 2.0).round() / 2.0).clamp(1.0, MAX_WINDOW_S);
        }
        Window::Beat { pre_s, post_s, .. } => {
            let hundredths =
                |s: f64, max: f64| ((s * rest * 100.0).round() / 100.0).clamp(0.05, max);
            *pre_s = hundredths(*pre_s, MAX_BEAT_S.0);
            *post_s = hundredths(*post_s, MAX_BEAT_S.1);
        }
    }
}

/// One member of a family: the exponent, the candidate and its cost on the profile.
#[derive(Debug, Clone)]
pub struct Member {
    /// The exponent.
    pub phi: f64,
    /// The scaled candidate.
    pub candidate: Candidate,
    /// Its predicted cost on the profile.
    pub cost: CostEstimate,
}

/// The largest `phi` among `phis` whose scaled candidate fits `profile` (flash, SRAM and the
/// latency budget) for `leads` leads; `None` when none fits.
pub fn largest_fitting(
    base: &Candidate,
    coefficients: &Coefficients,
    profile: &Profile,
    leads: usize,
    phis: &[f64],
) -> Option<Member> {
    fitting_members(base, coefficients, profile, leads, phis)
        .into_iter()
        .next()
}

/// Every distinct scaled candidate that fits `profile`, largest `phi` first. Neighbouring
/// exponents can round to the same network; each network is listed once, at its largest `phi`.
pub fn fitting_members(
    base: &Candidate,
    coefficients: &Coefficients,
    profile: &Profile,
    leads: usize,
    phis: &[f64],
) -> Vec<Member> {
    let mut ordered = phis.to_vec();
    ordered.sort_by(|a, b| b.total_cmp(a));
    let mut seen = std::collections::HashSet::new();
    ordered
        .into_iter()
        .filter_map(|phi| {
            let candidate = scale(base, coefficients, phi);
            let cost = estimate(&candidate, profile, leads).ok()?;
            (cost.fits && seen.insert(candidate.to_string())).then_some(Member {
                phi,
                candidate,
                cost,
            })
        })
        .collect()
}

/// `from, from + step, ..., to` (both ends included when `step` divides the span).
pub fn phi_steps(from: f64, to: f64, step: f64) -> Vec<f64> {
    let count = ((to - from) / step).floor().max(0.0) as usize;
    (0..=count).map(|i| from + i as f64 * step).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::{
        Activation, Architecture, Band, Baseline, ConvKind, Head, Normalisation, OutputActivation,
        Preprocessing,
    };

    fn base() -> Candidate {
        let block = |channels, stride, pool| Block {
            kind: ConvKind::Standard,
            channels,
            kernel: 5,
            stride,
            dilation: 1,
            activation: Activation::Relu,
            skip: false,
            pool,
        };
        Candidate {
            preprocessing: Preprocessing {
                window: Window::Fixed { length_s: 5.0 },
                band: Band::None,
                decimation: 4,
                baseline: Baseline::None,
                normalisation: Normalisation::ZScore,
            },
            architecture: Architecture {
                blocks: vec![block(8, 2, Pool::Max2), block(16, 2, Pool::None)],
                head: Head {
                    hidden: Some(16),
                    outputs: 4,
                    output: OutputActivation::Softmax,
                },
            },
        }
    }

    #[test]
    fn phi_zero_is_the_base_and_every_grid_point_doubles_the_macs_in_theory() {
        for c in coefficient_grid(9) {
            assert_eq!(scale(&base(), &c, 0.0), base());
            assert!((c.mac_growth() - 2.0).abs() < 1e-9, "{c:?}");
            assert!(c.alpha >= 1.0 && c.beta >= 1.0 && c.gamma >= 1.0, "{c:?}");
        }
    }

    #[test]
    fn macs_grow_with_phi_about_as_the_constraint_says() {
        let profile = Profile::load("stm32h743").expect("built-in profile");
        let c = coefficient_grid(1)[0];
        let macs = |phi: f64| {
            estimate(&scale(&base(), &c, phi), &profile, 1)
                .expect("costs")
                .macs as f64
        };
        // Rounding of blocks, channels, decimation and window makes single steps uneven (a
        // tiny base gains a whole block at once); over four steps the growth per step is the
        // constraint's 2x, give or take.
        let per_step = (macs(4.0) / macs(0.0)).powf(0.25);
        assert!(
            (1.6..=2.5).contains(&per_step),
            "x{per_step} per unit of phi"
        );
        for phi in [1.0, 2.0, 3.0, 4.0] {
            assert!(macs(phi) > macs(phi - 1.0), "phi {phi}");
        }
    }

    #[test]
    fn scaled_genes_stay_within_what_the_firmware_takes() {
        for c in coefficient_grid(9) {
            for phi in phi_steps(-3.0, 8.0, 0.5) {
                let s = scale(&base(), &c, phi);
                let blocks = &s.architecture.blocks;
                assert!((1..=MAX_BLOCKS).contains(&blocks.len()));
                for b in blocks {
                    assert!(b.channels % CHANNEL_STEP == 0);
                    assert!((CHANNEL_STEP..=MAX_CHANNELS).contains(&b.channels));
                }
                assert!([1, 2, 4].contains(&s.preprocessing.decimation));
                let shape = s.preprocessing.pipeline_shape(360.0).expect("shape");
                assert!(s.layer_shapes(shape.network_samples, 1).is_ok(), "{s}");
            }
        }
    }

    #[test]
    fn repeats_keep_the_length_and_add_identity_shortcuts() {
        let c = Coefficients {
            alpha: 2.0,
            beta: 1.0,
            gamma: 1.0,
        };
        let s = scale(&base(), &c, 1.0);
        let blocks = &s.architecture.blocks;
        assert_eq!(blocks.len(), 4);
        // Each original block, then its repeat at stride 1 without pooling.
        assert_eq!((blocks[0].stride, blocks[0].pool), (2, Pool::Max2));
        assert_eq!(
            (blocks[1].stride, blocks[1].pool, blocks[1].skip),
            (1, Pool::None, true)
        );
        assert_eq!(blocks[1].channels, blocks[0].channels);
        // The downsampling, and so the head's input length, is the base's.
        let fs = 360.0;
        let n = |c: &Candidate| {
            let shape = c.preprocessing.pipeline_shape(fs).expect("shape");
            c.layer_shapes(shape.network_samples, 1)
                .expect("layers")
                .last()
                .map(|l| l.out_length)
        };
        assert_eq!(n(&s), n(&base()));
    }

    #[test]
    fn resolution_takes_the_rate_first_then_the_window() {
        let c = Coefficients {
            alpha: 1.0,
            beta: 1.0,
            gamma: 2.0,
        };
        let once = scale(&base(), &c, 1.0);
        assert_eq!(once.preprocessing.decimation, 2);
        assert_eq!(once.preprocessing.window, Window::Fixed { length_s: 5.0 });
        let thrice = scale(&base(), &c, 3.0);
        // x8: decimation 4 -> 1 (x4), the window 5 s -> 10 s (x2).
        assert_eq!(thrice.preprocessing.decimation, 1);
        assert_eq!(
            thrice.preprocessing.window,
            Window::Fixed { length_s: 10.0 }
        );
    }

    #[test]
    fn the_largest_fitting_member_fits_and_the_next_step_does_not() {
        let c = coefficient_grid(1)[0];
        let phis = phi_steps(-2.0, 6.0, 0.5);
        for name in ["stm32l476", "nrf52840", "stm32h743"] {
            let profile = Profile::load(name).expect("built-in profile");
            let member = largest_fitting(&base(), &c, &profile, 1, &phis).expect("one fits");
            assert!(member.cost.fits, "{name}");
            let next = member.phi + 0.5;
            if next <= 6.0 {
                let bigger = estimate(&scale(&base(), &c, next), &profile, 1).expect("costs");
                assert!(!bigger.fits, "{name}: phi {next} fits too");
            }
        }
    }
}
