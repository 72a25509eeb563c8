//! The search space: the allowed choices of every gene, the built-in default per task, and a
//! user's space read from a JSON file.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::genes::{Activation, Band, Baseline, ConvKind, Normalisation, OutputActivation, Pool};
use super::SpaceError;

/// The version of the space file format this build reads and writes.
pub const SPACE_VERSION: u32 = 1;

/// The allowed choices of every gene.
///
/// Its JSON form is the user's space file; `ecgnas` writes the default one with
/// `serde_json::to_string_pretty`. Every list must be non-empty and free of duplicates, and
/// every value must be one the firmware implements ([`SearchSpace::validate`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct SearchSpace {
    /// Format version, [`SPACE_VERSION`].
    pub version: u32,
    /// Preprocessing genes.
    pub preprocessing: PreprocessingSpace,
    /// Architecture genes.
    pub architecture: ArchitectureSpace,
}

/// Choices of the preprocessing genes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct PreprocessingSpace {
    /// Example windows.
    pub window: WindowSpace,
    /// Band limiting choices, each a complete filter (cutoff and taps).
    pub band: Vec<Band>,
    /// Decimation factors, from {1, 2, 4}.
    pub decimation: Vec<usize>,
    /// Baseline removal choices.
    pub baseline: Vec<Baseline>,
    /// Normalisation choices.
    pub normalisation: Vec<Normalisation>,
}

/// Choices of the window genes: the task decides which form applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum WindowSpace {
    /// Window tasks: the window length.
    Fixed {
        /// Window lengths in seconds.
        length_s: Vec<f64>,
    },
    /// Beat tasks: the extent around the fiducial point and the RR side inputs.
    Beat {
        /// Seconds before the fiducial point.
        pre_s: Vec<f64>,
        /// Seconds from the fiducial point on.
        post_s: Vec<f64>,
        /// Whether the RR side inputs are fed to the head.
        rr_intervals: Vec<bool>,
    },
}

/// Choices of the architecture genes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct ArchitectureSpace {
    /// Numbers of blocks, from 1..=8.
    pub n_blocks: Vec<usize>,
    /// Choices for every block position (the same at every position).
    pub block: BlockSpace,
    /// Choices of the head.
    pub head: HeadSpace,
}

/// Choices of one block's genes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct BlockSpace {
    /// Convolution kinds.
    pub kind: Vec<ConvKind>,
    /// Output channels, each in 4..=64.
    pub channels: Vec<usize>,
    /// Kernel sizes, odd, in 3..=15.
    pub kernel: Vec<usize>,
    /// Strides, from {1, 2, 4}.
    pub stride: Vec<usize>,
    /// Dilations, from {1, 2, 4}.
    pub dilation: Vec<usize>,
    /// Activations.
    pub activation: Vec<Activation>,
    /// Residual shortcut or not.
    pub skip: Vec<bool>,
    /// Pooling after the block.
    pub pool: Vec<Pool>,
}

/// Choices of the head. The output layer is fixed by the task, not searched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct HeadSpace {
    /// Hidden dense units (`null` for none), each in 1..=256.
    pub hidden: Vec<Option<usize>>,
    /// Output units: the task's number of classes.
    pub outputs: usize,
    /// Output activation: sigmoid for multi-label tasks, softmax for single-label ones.
    pub output: OutputActivation,
}

/// What the default space needs to know of a task (kept apart from the data layer's types).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskShape {
    /// Beat or window examples.
    pub window: WindowKind,
    /// Several labels per example (sigmoid) or exactly one (softmax).
    pub multi_label: bool,
    /// Number of classes (output units).
    pub n_classes: usize,
    /// The ADC sampling rate the examples arrive at, in Hz.
    pub input_fs_hz: f64,
    /// Input channels (leads).
    pub leads: usize,
}

/// The kind of example a task makes.
#[derive(Debug, Clone, PartialEq)]
pub enum WindowKind {
    /// One beat around its annotation (mitdb-aami).
    Beat,
    /// Fixed windows whose length is searched among `choices_s` seconds.
    Fixed {
        /// Window lengths in seconds (e.g. 5, 10, 15, 20 for cinc2017; 10 for synthetic).
        choices_s: Vec<f64>,
    },
}

impl SearchSpace {
    /// The built-in space for a task.
    ///
    /// Preprocessing: decimation {1, 2, 4}; the task's windows (beats: pre {0.20, 0.25, 0.30} s,
    /// post {0.40, 0.45, 0.50} s, RR side inputs or not); low-pass none or {25, 40} Hz with
    /// {31, 63} taps (cutoffs at or above the Nyquist frequency of the ADC rate left out);
    /// moving-average baseline removal none, 0.2 s or 0.6 s; normalisation none, z-score or
    /// max-abs. Architecture: 1..=8 blocks of standard or depthwise-separable conv with
    /// {4, 8, 12, 16, 24, 32, 48, 64} channels, kernels 3..=15 (odd), stride and dilation
    /// {1, 2, 4}, ReLU or ReLU6, skip or not, no/max/average pooling; hidden dense none, 16,
    /// 32 or 64 units.
    pub fn default_for(task: &TaskShape) -> SearchSpace {
        let window = match &task.window {
            WindowKind::Beat => WindowSpace::Beat {
                pre_s: vec![0.2, 0.25, 0.3],
                post_s: vec![0.4, 0.45, 0.5],
                rr_intervals: vec![false, true],
            },
            WindowKind::Fixed { choices_s } => WindowSpace::Fixed {
                length_s: choices_s.clone(),
            },
        };
        let mut band = vec![Band::None];
        for cutoff_hz in [25.0, 40.0] {
            if cutoff_hz < task.input_fs_hz / 2.0 {
                for taps in [31, 63] {
                    band.push(Band::LowPass { cutoff_hz, taps });
                }
            }
        }
        SearchSpace {
            version: SPACE_VERSION,
            preprocessing: PreprocessingSpace {
                window,
                band,
                decimation: vec![1, 2, 4],
                baseline: vec![
                    Baseline::None,
                    Baseline::MovingAverage { window_s: 0.2 },
                    Baseline::MovingAverage { window_s: 0.6 },
                ],
                normalisation: vec![
                    Normalisation::None,
                    Normalisation::ZScore,
                    Normalisation::MaxAbs,
                ],
            },
            architecture: ArchitectureSpace {
                n_blocks: (1..=8).collect(),
                block: BlockSpace {
                    kind: vec![ConvKind::Standard, ConvKind::DepthwiseSeparable],
                    channels: vec![4, 8, 12, 16, 24, 32, 48, 64],
                    kernel: vec![3, 5, 7, 9, 11, 13, 15],
                    stride: vec![1, 2, 4],
                    dilation: vec![1, 2, 4],
                    activation: vec![Activation::Relu, Activation::Relu6],
                    skip: vec![false, true],
                    pool: vec![Pool::None, Pool::Max2, Pool::Avg2],
                },
                head: HeadSpace {
                    hidden: vec![None, Some(16), Some(32), Some(64)],
                    outputs: task.n_classes,
                    output: if task.multi_label {
                        OutputActivation::Sigmoid
                    } else {
                        OutputActivation::Softmax
                    },
                },
            },
        }
    }

    /// Reads and validates a user's space file; every error names the file.
    pub fn load(path: &Path) -> Result<SearchSpace, SpaceError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpaceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        SearchSpace::from_json(&text).map_err(|problem| SpaceError::InFile {
            path: path.to_path_buf(),
            problem: Box::new(problem),
        })
    }

    /// Parses and validates a space from its JSON text.
    ///
    /// The version is checked first, so an old or newer file is reported as such rather than
    /// as unknown fields.
    pub fn from_json(text: &str) -> Result<SearchSpace, SpaceError> {
        #[derive(Deserialize)]
        struct VersionOnly {
            version: u32,
        }
        let version = serde_json::from_str::<VersionOnly>(text)
            .map_err(|source| SpaceError::Parse { source })?
            .version;
        if version != SPACE_VERSION {
            return Err(SpaceError::UnsupportedVersion {
                found: version,
                supported: SPACE_VERSION,
            });
        }
        let space: SearchSpace =
            serde_json::from_str(text).map_err(|source| SpaceError::Parse { source })?;
        space.validate()?;
        Ok(space)
    }

    /// Checks that every gene lists at least one choice, no choice twice, and only values the
    /// firmware implements.
    pub fn validate(&self) -> Result<(), SpaceError> {
        if self.version != SPACE_VERSION {
            return Err(SpaceError::UnsupportedVersion {
                found: self.version,
                supported: SPACE_VERSION,
            });
        }
        self.preprocessing.validate()?;
        self.architecture.validate()
    }
}

impl PreprocessingSpace {
    fn validate(&self) -> Result<(), SpaceError> {
        match &self.window {
            WindowSpace::Fixed { length_s } => {
                let gene = "preprocessing.window.fixed.length_s";
                check_list(gene, length_s)?;
                check_seconds(gene, length_s, false, 120.0, "more than 0, up to 120 s")?;
            }
            WindowSpace::Beat {
                pre_s,
                post_s,
                rr_intervals,
            } => {
                check_list("preprocessing.window.beat.pre_s", pre_s)?;
                check_seconds(
                    "preprocessing.window.beat.pre_s",
                    pre_s,
                    true,
                    5.0,
                    "0 to 5 s",
                )?;
                check_list("preprocessing.window.beat.post_s", post_s)?;
                check_seconds(
                    "preprocessing.window.beat.post_s",
                    post_s,
                    false,
                    5.0,
                    "more than 0, up to 5 s",
                )?;
                check_list("preprocessing.window.beat.rr_intervals", rr_intervals)?;
            }
        }
        check_list("preprocessing.band", &self.band)?;
        for band in &self.band {
            if let Band::LowPass { cutoff_hz, taps } = *band {
                if !(cutoff_hz.is_finite() && cutoff_hz > 0.0) {
                    return Err(not_allowed(
                        "preprocessing.band.low_pass.cutoff_hz",
                        cutoff_hz,
                        "a positive number of Hz",
                    ));
                }
                if taps % 2 == 0 || !(3..=255).contains(&taps) {
                    return Err(not_allowed(
                        "preprocessing.band.low_pass.taps",
                        taps,
                        "odd tap counts in 3..=255",
                    ));
                }
            }
        }
        check_list("preprocessing.decimation", &self.decimation)?;
        check_one_two_four("preprocessing.decimation", &self.decimation)?;
        check_list("preprocessing.baseline", &self.baseline)?;
        for baseline in &self.baseline {
            if let Baseline::MovingAverage { window_s } = *baseline {
                check_seconds(
                    "preprocessing.baseline.moving_average.window_s",
                    &[window_s],
                    false,
                    10.0,
                    "more than 0, up to 10 s",
                )?;
            }
        }
        check_list("preprocessing.normalisation", &self.normalisation)
    }
}

impl ArchitectureSpace {
    fn validate(&self) -> Result<(), SpaceError> {
        check_list("architecture.n_blocks", &self.n_blocks)?;
        for &n in &self.n_blocks {
            if !(1..=8).contains(&n) {
                return Err(not_allowed("architecture.n_blocks", n, "1..=8"));
            }
        }
        let block = &self.block;
        check_list("architecture.block.kind", &block.kind)?;
        check_list("architecture.block.channels", &block.channels)?;
        if let Some(&channels) = block.channels.iter().find(|c| !(4..=64).contains(*c)) {
            return Err(SpaceError::ChannelsOutOfRange { channels });
        }
        check_list("architecture.block.kernel", &block.kernel)?;
        for &kernel in &block.kernel {
            if !(3..=15).contains(&kernel) {
                return Err(SpaceError::KernelOutOfRange { kernel });
            }
            if kernel % 2 == 0 {
                return Err(SpaceError::EvenKernel { kernel });
            }
        }
        check_list("architecture.block.stride", &block.stride)?;
        check_one_two_four("architecture.block.stride", &block.stride)?;
        check_list("architecture.block.dilation", &block.dilation)?;
        check_one_two_four("architecture.block.dilation", &block.dilation)?;
        check_list("architecture.block.activation", &block.activation)?;
        check_list("architecture.block.skip", &block.skip)?;
        check_list("architecture.block.pool", &block.pool)?;
        let head = &self.head;
        check_list("architecture.head.hidden", &head.hidden)?;
        for units in head.hidden.iter().flatten() {
            if !(1..=256).contains(units) {
                return Err(not_allowed(
                    "architecture.head.hidden",
                    units,
                    "null or 1..=256 units",
                ));
            }
        }
        let min_outputs = match head.output {
            OutputActivation::Sigmoid => 1,
            OutputActivation::Softmax => 2,
        };
        if head.outputs < min_outputs {
            return Err(not_allowed(
                "architecture.head.outputs",
                head.outputs,
                "at least 1 output (sigmoid) or 2 (softmax)",
            ));
        }
        Ok(())
    }
}

/// Non-empty, and no value twice.
fn check_list<T: PartialEq + std::fmt::Debug>(
    gene: &'static str,
    list: &[T],
) -> Result<(), SpaceError> {
    if list.is_empty() {
        return Err(SpaceError::EmptyChoices { gene });
    }
    for (i, value) in list.iter().enumerate() {
        if list[..i].contains(value) {
            return Err(SpaceError::DuplicateChoice {
                gene,
                value: format!("{value:?}"),
            });
        }
    }
    Ok(())
}

/// Decimation, stride and dilation: powers of two the firmware's index arithmetic handles.
fn check_one_two_four(gene: &'static str, list: &[usize]) -> Result<(), SpaceError> {
    match list.iter().find(|v| ![1, 2, 4].contains(*v)) {
        Some(value) => Err(not_allowed(gene, value, "1, 2 or 4")),
        None => Ok(()),
    }
}

fn check_seconds(
    gene: &'static str,
    list: &[f64],
    zero_ok: bool,
    max_s: f64,
    allowed: &'static str,
) -> Result<(), SpaceError> {
    for &s in list {
        let low_ok = if zero_ok { s >= 0.0 } else { s > 0.0 };
        if !(s.is_finite() && low_ok && s <= max_s) {
            return Err(not_allowed(gene, s, allowed));
        }
    }
    Ok(())
}

fn not_allowed(
    gene: &'static str,
    value: impl std::fmt::Display,
    allowed: &'static str,
) -> SpaceError {
    SpaceError::NotAllowed {
        gene,
        value: value.to_string(),
        allowed,
    }
}
