//! Hardware profiles: one chip's figures, read from a `hw-profiles/*.toml` file and checked.
//!
//! A profile says what the device offers (core, clock, SRAM, flash), what the rest of the
//! application keeps of it (a BLE stack, an RTOS), how fast its ECG front end samples, the
//! default latency budget, the active power, and the coefficients of the per-layer cost model
//! with their unit and provenance. The schema is documented field by field in
//! `hw-profiles/README.md`.
//!
//! Chips are data: the built-in profiles are the files of `hw-profiles/`, embedded in the
//! binary with `include_str!`, and a user's own file works wherever a built-in name does
//! ([`Profile::load`]). Parsing rejects unknown fields (a typo is an error, not a silently
//! ignored key), and [`Profile::validate`] checks the values; every error names the file and
//! the field.
//!
//! ```
//! use ecgnas::cost::profile::Profile;
//!
//! let p = Profile::load("nrf52840").unwrap();
//! assert_eq!(p.clock_hz.get(), 64_000_000);
//! assert!(p.available_sram_bytes().get() < p.memory.sram_bytes.get());
//! assert_eq!(p.cycles_to_ms(64_000.0), 1.0);
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

/// The built-in profiles: (name, TOML text), one per file of `hw-profiles/`, sorted by name.
///
/// A test checks that this table and the folder list the same files.
const BUILTIN: &[(&str, &str)] = &[
    (
        "apollo4-plus",
        include_str!("../../../hw-profiles/apollo4-plus.toml"),
    ),
    (
        "esp32-s3",
        include_str!("../../../hw-profiles/esp32-s3.toml"),
    ),
    (
        "nrf52840",
        include_str!("../../../hw-profiles/nrf52840.toml"),
    ),
    ("nrf5340", include_str!("../../../hw-profiles/nrf5340.toml")),
    (
        "qemu-mps2-an386",
        include_str!("../../../hw-profiles/qemu-mps2-an386.toml"),
    ),
    (
        "stm32h743",
        include_str!("../../../hw-profiles/stm32h743.toml"),
    ),
    (
        "stm32l476",
        include_str!("../../../hw-profiles/stm32l476.toml"),
    ),
];

/// Lowest and highest clock a profile may declare; outside this range the figure is a typo
/// (a clock written in MHz instead of Hz, or a digit too many).
const CLOCK_RANGE_HZ: (u64, u64) = (1_000, 5_000_000_000);

/// Highest ADC sampling rate a profile may declare for ECG.
const MAX_ADC_RATE_HZ: f64 = 100_000.0;

/// Everything that can go wrong while loading a profile.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The profile file could not be read.
    #[error("{path}: cannot read the profile: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or does not follow the schema: an unknown or missing field,
    /// a value of the wrong type, a negative size or clock.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML parser's message, with the line, the column and the offending text.
        message: String,
    },
    /// A value parsed but makes no sense for a chip.
    #[error("{path}: {field}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The field, as a dotted TOML path (`memory.sram_reserved_bytes`).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A name that is neither a built-in profile nor a file.
    #[error("no built-in profile named `{name}` (built-in: {builtin}); give the path of a .toml file to use your own chip")]
    UnknownName {
        /// The name asked for.
        name: String,
        /// The built-in names, comma-separated.
        builtin: String,
    },
}

/// A quantity of bytes (SRAM, flash).
///
/// Deserialises from a non-negative integer; a negative one is a parse error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Bytes(pub u64);

impl Bytes {
    /// The number of bytes.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} B", self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(deserializer)?;
        u64::try_from(v).map(Bytes).map_err(|_| {
            serde::de::Error::custom(format!(
                "a size must be a whole number of bytes, not negative: got {v}"
            ))
        })
    }
}

/// A frequency in hertz (a core clock).
///
/// Deserialises from a non-negative integer; a negative one is a parse error, and zero is
/// rejected by [`Profile::validate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Hz(pub u64);

impl Hz {
    /// The frequency in hertz.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Hz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} Hz", self.0)
    }
}

impl<'de> Deserialize<'de> for Hz {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(deserializer)?;
        u64::try_from(v).map(Hz).map_err(|_| {
            serde::de::Error::custom(format!(
                "a clock must be a positive number of hertz (64 MHz is 64_000_000): got {v}"
            ))
        })
    }
}

/// The processor core that runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Core {
    /// Arm Cortex-M0+ (Armv6-M, no DSP extension).
    CortexM0plus,
    /// Arm Cortex-M3 (Armv7-M, no DSP extension).
    CortexM3,
    /// Arm Cortex-M4 without FPU (Armv7E-M, DSP extension: SMLAD).
    CortexM4,
    /// Arm Cortex-M4 with single-precision FPU (Armv7E-M, DSP extension).
    CortexM4f,
    /// Arm Cortex-M7 (Armv7E-M, dual-issue, caches; FPU on the parts profiled here).
    CortexM7,
    /// Arm Cortex-M33 (Armv8-M Mainline; DSP extension and FPU optional, present on nRF5340).
    CortexM33,
    /// Arm Cortex-M55 (Armv8.1-M, Helium vector extension).
    CortexM55,
    /// Cadence Xtensa LX7 (ESP32-S3): not a Cortex-M, the firmware does not build for it.
    XtensaLx7,
}

impl Core {
    /// The name written in profiles and JSON output (`cortex-m4f`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Core::CortexM0plus => "cortex-m0plus",
            Core::CortexM3 => "cortex-m3",
            Core::CortexM4 => "cortex-m4",
            Core::CortexM4f => "cortex-m4f",
            Core::CortexM7 => "cortex-m7",
            Core::CortexM33 => "cortex-m33",
            Core::CortexM55 => "cortex-m55",
            Core::XtensaLx7 => "xtensa-lx7",
        }
    }

    /// The Rust target triples whose code runs on this core.
    pub const fn rust_targets(self) -> &'static [&'static str] {
        match self {
            Core::CortexM0plus => &["thumbv6m-none-eabi"],
            Core::CortexM3 => &["thumbv7m-none-eabi"],
            Core::CortexM4 => &["thumbv7em-none-eabi"],
            Core::CortexM4f | Core::CortexM7 => &["thumbv7em-none-eabihf", "thumbv7em-none-eabi"],
            Core::CortexM33 => &["thumbv8m.main-none-eabihf", "thumbv8m.main-none-eabi"],
            Core::CortexM55 => &["thumbv8m.main-none-eabihf", "thumbv8m.main-none-eabi"],
            Core::XtensaLx7 => &["xtensa-esp32s3-none-elf"],
        }
    }
}

impl fmt::Display for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One chip (or emulated board) as ecgnas sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Short name: lowercase letters, digits and `-`; a built-in's name is its file name.
    pub name: String,
    /// One line for people: the chip, its core and clock, a board that carries it.
    pub description: String,
    /// The processor core.
    pub core: Core,
    /// The Rust target triple the firmware is built for; required unless `estimate_only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rust_target: Option<String>,
    /// True when ecgnas cannot build or run its firmware on this chip: its figures are for
    /// comparison only, and calibration is impossible.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub estimate_only: bool,
    /// The chip's name in probe-rs's target database (`nRF52840_xxAA`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_rs_chip: Option<String>,
    /// The core clock the model runs at.
    pub clock_hz: Hz,
    /// Memory sizes, and what the rest of the application keeps.
    pub memory: Memory,
    /// The ECG front end.
    pub ecg: Ecg,
    /// Default budgets per inference.
    pub budget: Budget,
    /// Active power, for energy per inference.
    pub power: Power,
    /// Coefficients of the per-layer cost model.
    pub cost: CostModel,
}

/// Memory sizes of the chip, and how much of each the rest of the application keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    /// All on-chip SRAM the application may use.
    pub sram_bytes: Bytes,
    /// The largest contiguous SRAM region, when SRAM is split (the activation arena must fit
    /// in one region); absent means one region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sram_largest_region_bytes: Option<Bytes>,
    /// Flash (or MRAM) for code and constant data.
    pub flash_bytes: Bytes,
    /// SRAM the rest of the application keeps: BLE stack, RTOS, stacks, buffers.
    pub sram_reserved_bytes: Bytes,
    /// Flash the rest of the application keeps: BLE stack, RTOS, bootloader, drivers.
    pub flash_reserved_bytes: Bytes,
    /// What the reserved memory is for, in words.
    pub reserved_for: String,
}

/// The device's ECG front end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ecg {
    /// The ADC's sampling rate for ECG, in hertz: the rate the deployed model sees.
    pub adc_sample_rate_hz: f64,
}

/// Default budgets per inference; a search may override them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Longest acceptable latency of one inference, preprocessing included, in milliseconds.
    pub latency_ms: f64,
}

/// Power drawn while the core runs the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Power {
    /// Active power in milliwatts (run-mode current times supply voltage).
    pub active_mw: f64,
    /// Where the figure comes from: document, table, conditions, and whether it was verified.
    pub source: String,
}

/// The unit the cost model counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CostUnit {
    /// Core clock cycles, as a board's cycle counter (DWT CYCCNT) measures them.
    Cycles,
    /// Executed instructions, as QEMU's instruction-counting plugin measures them.
    Instructions,
}

impl CostUnit {
    /// The name written in profiles (`cycles`).
    pub const fn as_str(self) -> &'static str {
        match self {
            CostUnit::Cycles => "cycles",
            CostUnit::Instructions => "instructions",
        }
    }
}

impl fmt::Display for CostUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a set of cost coefficients comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProvenanceKind {
    /// Estimated from documentation (instruction timings, datasheets); not measured.
    Estimated,
    /// Fitted to instruction counts of micro-benchmarks run on QEMU.
    CalibratedQemu,
    /// Fitted to cycle counts of micro-benchmarks run on a real board.
    MeasuredBoard,
}

impl ProvenanceKind {
    /// The name written in profiles (`calibrated-qemu`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ProvenanceKind::Estimated => "estimated",
            ProvenanceKind::CalibratedQemu => "calibrated-qemu",
            ProvenanceKind::MeasuredBoard => "measured-board",
        }
    }
}

impl fmt::Display for ProvenanceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The provenance of a profile's cost coefficients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// Estimated, calibrated on QEMU or measured on a board.
    pub kind: ProvenanceKind,
    /// When the coefficients were estimated or fitted, as `YYYY-MM-DD`.
    pub date: String,
    /// Version of the firmware the benchmarks ran (required unless `kind` is `estimated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware_version: Option<String>,
    /// The board the benchmarks ran on (required when `kind` is `measured-board`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board: Option<String>,
    /// Error of the fit on held-out benchmarks, in percent, when fitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit_error_pct: Option<f64>,
    /// How the figures were obtained: the reasoning behind an estimate, or the command that
    /// fitted them.
    pub note: String,
}

/// Coefficients of one kernel kind: `cost = a·MACs + b·outputs + c·inputs + d + e·extra`, in
/// the model's unit (each count the work of the kind's code path, see the estimate).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coefficients {
    /// Cost per multiply-accumulate.
    pub a_per_mac: f64,
    /// Cost per output element written (requantisation, store).
    pub b_per_output: f64,
    /// Cost per input element read (zero-point offset, padding, copies).
    pub c_per_input: f64,
    /// Fixed cost per layer call (dispatch, setup).
    pub d_fixed: f64,
    /// Cost per unit of the kind's extra work (0, and omitted, where it has none): the filter
    /// expansion of the DSP convolution path, the positions of the one-input-channel path,
    /// the channels of the DSP depthwise path, the taps the scalar loops visit, the divisions
    /// of average pooling, the FIR taps of the preprocessing.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub e_per_extra: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

impl Coefficients {
    /// The cost of one layer with the given counts, in the model's unit.
    pub fn cost(&self, macs: u64, outputs: u64, inputs: u64) -> f64 {
        self.cost_with_extra(macs, outputs, inputs, 0)
    }

    /// [`Coefficients::cost`] with `extra` units of the kind's extra work.
    pub fn cost_with_extra(&self, macs: u64, outputs: u64, inputs: u64, extra: u64) -> f64 {
        self.a_per_mac * macs as f64
            + self.b_per_output * outputs as f64
            + self.c_per_input * inputs as f64
            + self.d_fixed
            + self.e_per_extra * extra as f64
    }

    /// The coefficients with their field names, in schema order.
    fn named(&self) -> [(&'static str, f64); 5] {
        [
            ("a_per_mac", self.a_per_mac),
            ("b_per_output", self.b_per_output),
            ("c_per_input", self.c_per_input),
            ("d_fixed", self.d_fixed),
            ("e_per_extra", self.e_per_extra),
        ]
    }
}

/// The kinds of kernel the cost model has coefficients for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KernelKind {
    /// A general 1-D convolution.
    Conv,
    /// A depthwise 1-D convolution (one filter per channel).
    Depthwise,
    /// A pointwise (kernel size 1) convolution.
    Pointwise,
    /// A fully connected layer.
    Dense,
    /// Average or max pooling (MACs count the window taps).
    Pool,
    /// Element-wise operations: activation, residual add, requantisation.
    Elementwise,
    /// The preprocessing genes run on the device: filters, decimation, normalisation.
    Preprocessing,
    /// A convolution with one input channel on the DSP path for it (`[cost.conv-single]`,
    /// optional: `conv`'s coefficients otherwise).
    ConvSingle,
    /// A convolution too large for the DSP path's buffers, run by the scalar loop
    /// (`[cost.conv-scalar]`, optional).
    ConvScalar,
    /// A depthwise convolution on the scalar loop (`[cost.depthwise-scalar]`, optional).
    DepthwiseScalar,
    /// A dense layer on the scalar loop (`[cost.dense-scalar]`, optional).
    DenseScalar,
}

impl KernelKind {
    /// Every kernel kind, in schema order.
    pub const ALL: [KernelKind; 7] = [
        KernelKind::Conv,
        KernelKind::Depthwise,
        KernelKind::Pointwise,
        KernelKind::Dense,
        KernelKind::Pool,
        KernelKind::Elementwise,
        KernelKind::Preprocessing,
    ];

    /// The optional kinds: layers whose shape sends them down another code path.
    pub const PATHS: [KernelKind; 4] = [
        KernelKind::ConvSingle,
        KernelKind::ConvScalar,
        KernelKind::DepthwiseScalar,
        KernelKind::DenseScalar,
    ];

    /// The name of its table in a profile (`conv` for `[cost.conv]`).
    pub const fn as_str(self) -> &'static str {
        match self {
            KernelKind::Conv => "conv",
            KernelKind::Depthwise => "depthwise",
            KernelKind::Pointwise => "pointwise",
            KernelKind::Dense => "dense",
            KernelKind::Pool => "pool",
            KernelKind::Elementwise => "elementwise",
            KernelKind::Preprocessing => "preprocessing",
            KernelKind::ConvSingle => "conv-single",
            KernelKind::ConvScalar => "conv-scalar",
            KernelKind::DepthwiseScalar => "depthwise-scalar",
            KernelKind::DenseScalar => "dense-scalar",
        }
    }

    /// The required kind whose coefficients an optional kind falls back to.
    pub const fn base(self) -> KernelKind {
        match self {
            KernelKind::ConvSingle | KernelKind::ConvScalar => KernelKind::Conv,
            KernelKind::DepthwiseScalar => KernelKind::Depthwise,
            KernelKind::DenseScalar => KernelKind::Dense,
            other => other,
        }
    }
}

impl fmt::Display for KernelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The per-layer cost model: a unit, a provenance, and coefficients per kernel kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostModel {
    /// What the coefficients count.
    pub unit: CostUnit,
    /// Where the coefficients come from.
    pub provenance: Provenance,
    /// General convolution.
    pub conv: Coefficients,
    /// Depthwise convolution.
    pub depthwise: Coefficients,
    /// Pointwise convolution.
    pub pointwise: Coefficients,
    /// Fully connected layer.
    pub dense: Coefficients,
    /// Pooling.
    pub pool: Coefficients,
    /// Element-wise operations.
    pub elementwise: Coefficients,
    /// On-device preprocessing.
    pub preprocessing: Coefficients,
    /// One-input-channel convolution (optional).
    #[serde(
        default,
        rename = "conv-single",
        skip_serializing_if = "Option::is_none"
    )]
    pub conv_single: Option<Coefficients>,
    /// Convolution on the scalar loop (optional).
    #[serde(
        default,
        rename = "conv-scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub conv_scalar: Option<Coefficients>,
    /// Depthwise convolution on the scalar loop (optional).
    #[serde(
        default,
        rename = "depthwise-scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub depthwise_scalar: Option<Coefficients>,
    /// Dense layer on the scalar loop (optional).
    #[serde(
        default,
        rename = "dense-scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub dense_scalar: Option<Coefficients>,
}

impl CostModel {
    /// The coefficients of one kernel kind, to change them.
    pub fn coefficients_mut(&mut self, kind: KernelKind) -> &mut Coefficients {
        match kind {
            KernelKind::Conv => &mut self.conv,
            KernelKind::Depthwise => &mut self.depthwise,
            KernelKind::Pointwise => &mut self.pointwise,
            KernelKind::Dense => &mut self.dense,
            KernelKind::Pool => &mut self.pool,
            KernelKind::Elementwise => &mut self.elementwise,
            KernelKind::Preprocessing => &mut self.preprocessing,
            KernelKind::ConvSingle => self.conv_single.get_or_insert(self.conv),
            KernelKind::ConvScalar => self.conv_scalar.get_or_insert(self.conv),
            KernelKind::DepthwiseScalar => self.depthwise_scalar.get_or_insert(self.depthwise),
            KernelKind::DenseScalar => self.dense_scalar.get_or_insert(self.dense),
        }
    }

    /// The coefficients of one kernel kind.
    pub fn coefficients(&self, kind: KernelKind) -> &Coefficients {
        match kind {
            KernelKind::Conv => &self.conv,
            KernelKind::Depthwise => &self.depthwise,
            KernelKind::Pointwise => &self.pointwise,
            KernelKind::Dense => &self.dense,
            KernelKind::Pool => &self.pool,
            KernelKind::Elementwise => &self.elementwise,
            KernelKind::Preprocessing => &self.preprocessing,
            KernelKind::ConvSingle => self.conv_single.as_ref().unwrap_or(&self.conv),
            KernelKind::ConvScalar => self.conv_scalar.as_ref().unwrap_or(&self.conv),
            KernelKind::DepthwiseScalar => {
                self.depthwise_scalar.as_ref().unwrap_or(&self.depthwise)
            }
            KernelKind::DenseScalar => self.dense_scalar.as_ref().unwrap_or(&self.dense),
        }
    }
}

impl Profile {
    /// Parses and validates a profile from TOML text; `origin_path` names the file in errors.
    pub fn from_toml_str(
        text: &str,
        origin_path: impl AsRef<Path>,
    ) -> Result<Profile, ProfileError> {
        let path = origin_path.as_ref();
        let profile: Profile = toml::from_str(text).map_err(|e| ProfileError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        profile.validate(path)?;
        Ok(profile)
    }

    /// Loads a profile by built-in name (`nrf52840`) or from a TOML file.
    ///
    /// A string ending in `.toml` or containing a path separator is a path; anything else is
    /// looked up among the built-ins first, then tried as a file.
    pub fn load(name_or_path: &str) -> Result<Profile, ProfileError> {
        let looks_like_path = name_or_path.ends_with(".toml")
            || name_or_path.contains('/')
            || name_or_path.contains(std::path::MAIN_SEPARATOR);
        if !looks_like_path {
            if let Some(text) = builtin_text(name_or_path) {
                return Profile::from_builtin(name_or_path, text);
            }
            if !Path::new(name_or_path).is_file() {
                return Err(ProfileError::UnknownName {
                    name: name_or_path.to_string(),
                    builtin: Profile::builtin_names().join(", "),
                });
            }
        }
        Profile::load_file(Path::new(name_or_path))
    }

    /// Loads and validates a profile from a TOML file.
    pub fn load_file(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Profile::from_toml_str(&text, path)
    }

    /// The TOML text of a built-in profile, or of a profile file.
    pub fn source_text(name_or_path: &str) -> Result<String, ProfileError> {
        if let Some((_, text)) = BUILTIN.iter().find(|(name, _)| *name == name_or_path) {
            return Ok(text.to_string());
        }
        let path = Path::new(name_or_path);
        std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// `text` (a profile's TOML) with its `[cost]` tables replaced by `cost`: the cost tables
    /// come last in every profile, so everything before `[cost]` is kept as written.
    pub fn with_cost_section(text: &str, cost: &CostModel) -> Result<String, toml::ser::Error> {
        let head = match text.find("\n[cost]") {
            Some(at) => &text[..at + 1],
            None => text,
        };
        #[derive(Serialize)]
        struct Wrapper<'a> {
            cost: &'a CostModel,
        }
        Ok(format!("{head}{}", toml::to_string(&Wrapper { cost })?))
    }

    /// The names of the built-in profiles, sorted.
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(name, _)| *name).collect()
    }

    /// Every built-in profile, parsed and validated, sorted by name.
    pub fn all_builtin() -> Result<Vec<Profile>, ProfileError> {
        BUILTIN
            .iter()
            .map(|(name, text)| Profile::from_builtin(name, text))
            .collect()
    }

    /// Parses a built-in's text, and checks that its `name` is its file name.
    fn from_builtin(file_name: &str, text: &str) -> Result<Profile, ProfileError> {
        let path = PathBuf::from(format!("hw-profiles/{file_name}.toml"));
        let profile = Profile::from_toml_str(text, &path)?;
        if profile.name != file_name {
            return Err(ProfileError::Invalid {
                path,
                field: "name".to_string(),
                message: format!(
                    "is `{}`, but a built-in profile's name must be its file name, `{file_name}`",
                    profile.name
                ),
            });
        }
        Ok(profile)
    }

    /// Checks every value; `path` names the file in errors.
    pub fn validate(&self, path: &Path) -> Result<(), ProfileError> {
        let invalid = |field: &str, message: String| ProfileError::Invalid {
            path: path.to_path_buf(),
            field: field.to_string(),
            message,
        };

        let name_ok = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !self.name.starts_with('-')
            && !self.name.ends_with('-');
        if !name_ok {
            return Err(invalid(
                "name",
                format!(
                    "`{}` is not a profile name: use lowercase letters, digits and `-`",
                    self.name
                ),
            ));
        }
        require_text(&self.description, "description").map_err(|m| invalid("description", m))?;

        let (lo, hi) = CLOCK_RANGE_HZ;
        let clock = self.clock_hz.get();
        if clock == 0 {
            return Err(invalid("clock_hz", "must be positive, got 0".to_string()));
        }
        if !(lo..=hi).contains(&clock) {
            return Err(invalid(
                "clock_hz",
                format!(
                    "{clock} Hz is not a plausible core clock ({lo} Hz to {hi} Hz); write it in hertz: 64 MHz is 64_000_000"
                ),
            ));
        }

        match &self.rust_target {
            None if !self.estimate_only => {
                return Err(invalid(
                    "rust_target",
                    "is missing: a profile ecgnas builds firmware for needs its Rust target triple (or set estimate_only = true)".to_string(),
                ));
            }
            None => {}
            Some(target) => {
                let expected = self.core.rust_targets();
                if !expected.contains(&target.as_str()) {
                    return Err(invalid(
                        "rust_target",
                        format!(
                            "`{target}` does not run on core {}; expected {}",
                            self.core,
                            expected.join(" or ")
                        ),
                    ));
                }
            }
        }
        if !self.estimate_only && self.core == Core::XtensaLx7 {
            return Err(invalid(
                "estimate_only",
                "must be true for core xtensa-lx7: the ecgnas firmware does not build for it"
                    .to_string(),
            ));
        }
        if let Some(chip) = &self.probe_rs_chip {
            require_text(chip, "probe_rs_chip").map_err(|m| invalid("probe_rs_chip", m))?;
        }

        self.validate_memory(path)?;

        let rate = self.ecg.adc_sample_rate_hz;
        if !(rate.is_finite() && rate > 0.0 && rate <= MAX_ADC_RATE_HZ) {
            return Err(invalid(
                "ecg.adc_sample_rate_hz",
                format!("must be a sampling rate in hertz above 0 and at most {MAX_ADC_RATE_HZ}, got {rate}"),
            ));
        }
        let latency = self.budget.latency_ms;
        if !(latency.is_finite() && latency > 0.0) {
            return Err(invalid(
                "budget.latency_ms",
                format!("must be a positive number of milliseconds, got {latency}"),
            ));
        }
        let mw = self.power.active_mw;
        if !(mw.is_finite() && mw > 0.0) {
            return Err(invalid(
                "power.active_mw",
                format!("must be a positive number of milliwatts, got {mw}"),
            ));
        }
        require_text(&self.power.source, "power.source").map_err(|m| invalid("power.source", m))?;

        self.validate_cost(path)
    }

    fn validate_memory(&self, path: &Path) -> Result<(), ProfileError> {
        let invalid = |field: &str, message: String| ProfileError::Invalid {
            path: path.to_path_buf(),
            field: format!("memory.{field}"),
            message,
        };
        let m = &self.memory;
        if m.sram_bytes.get() == 0 {
            return Err(invalid("sram_bytes", "must be positive, got 0".to_string()));
        }
        if m.flash_bytes.get() == 0 {
            return Err(invalid(
                "flash_bytes",
                "must be positive, got 0".to_string(),
            ));
        }
        if m.sram_reserved_bytes >= m.sram_bytes {
            return Err(invalid(
                "sram_reserved_bytes",
                format!(
                    "SRAM reserved by the application ({}) is not smaller than the chip's SRAM ({})",
                    m.sram_reserved_bytes, m.sram_bytes
                ),
            ));
        }
        if m.flash_reserved_bytes >= m.flash_bytes {
            return Err(invalid(
                "flash_reserved_bytes",
                format!(
                    "flash reserved by the application ({}) is not smaller than the chip's flash ({})",
                    m.flash_reserved_bytes, m.flash_bytes
                ),
            ));
        }
        if let Some(region) = m.sram_largest_region_bytes {
            if region.get() == 0 || region > m.sram_bytes {
                return Err(invalid(
                    "sram_largest_region_bytes",
                    format!(
                        "the largest SRAM region ({region}) must be positive and at most the chip's SRAM ({})",
                        m.sram_bytes
                    ),
                ));
            }
        }
        require_text(&m.reserved_for, "reserved_for").map_err(|msg| invalid("reserved_for", msg))
    }

    fn validate_cost(&self, path: &Path) -> Result<(), ProfileError> {
        let invalid = |field: String, message: String| ProfileError::Invalid {
            path: path.to_path_buf(),
            field,
            message,
        };
        for kind in KernelKind::ALL.into_iter().chain(KernelKind::PATHS) {
            for (coef, value) in self.cost.coefficients(kind).named() {
                if !(value.is_finite() && value >= 0.0) {
                    return Err(invalid(
                        format!("cost.{kind}.{coef}"),
                        format!(
                            "must be a finite number of {} at least 0, got {value}",
                            self.cost.unit
                        ),
                    ));
                }
            }
        }

        let p = &self.cost.provenance;
        if !is_iso_date(&p.date) {
            return Err(invalid(
                "cost.provenance.date".to_string(),
                format!("`{}` is not a date written YYYY-MM-DD", p.date),
            ));
        }
        require_text(&p.note, "note")
            .map_err(|m| invalid("cost.provenance.note".to_string(), m))?;
        if p.kind != ProvenanceKind::Estimated {
            let missing = p
                .firmware_version
                .as_deref()
                .is_none_or(|v| v.trim().is_empty());
            if missing {
                return Err(invalid(
                    "cost.provenance.firmware_version".to_string(),
                    format!(
                        "is required when the coefficients are {}: name the firmware the benchmarks ran",
                        p.kind
                    ),
                ));
            }
        }
        if p.kind == ProvenanceKind::MeasuredBoard
            && p.board.as_deref().is_none_or(|b| b.trim().is_empty())
        {
            return Err(invalid(
                "cost.provenance.board".to_string(),
                "is required when the coefficients are measured-board: name the board".to_string(),
            ));
        }
        if let Some(err) = p.fit_error_pct {
            if !(err.is_finite() && err >= 0.0) {
                return Err(invalid(
                    "cost.provenance.fit_error_pct".to_string(),
                    format!("must be a finite percentage at least 0, got {err}"),
                ));
            }
        }
        if self.estimate_only && p.kind != ProvenanceKind::Estimated {
            return Err(invalid(
                "cost.provenance.kind".to_string(),
                format!(
                    "is {}, but an estimate-only profile cannot be calibrated or measured",
                    p.kind
                ),
            ));
        }
        Ok(())
    }

    /// SRAM left for the model (arena, input buffers, its stack): total minus reserved.
    pub fn available_sram_bytes(&self) -> Bytes {
        Bytes(
            self.memory
                .sram_bytes
                .get()
                .saturating_sub(self.memory.sram_reserved_bytes.get()),
        )
    }

    /// Flash left for the model (weights, biases, quantisation parameters, runtime code).
    pub fn available_flash_bytes(&self) -> Bytes {
        Bytes(
            self.memory
                .flash_bytes
                .get()
                .saturating_sub(self.memory.flash_reserved_bytes.get()),
        )
    }

    /// The largest contiguous SRAM region: the most the activation arena can take.
    pub fn sram_largest_region_bytes(&self) -> Bytes {
        self.memory
            .sram_largest_region_bytes
            .unwrap_or(self.memory.sram_bytes)
    }

    /// Milliseconds taken by `cycles` cycles at this profile's clock.
    ///
    /// For a profile counting instructions (`cost.unit = "instructions"`) the result is
    /// nominal: one instruction per cycle.
    pub fn cycles_to_ms(&self, cycles: f64) -> f64 {
        cycles * 1000.0 / self.clock_hz.get() as f64
    }

    /// Energy in microjoules of running for `latency_ms` at the active power
    /// (mW × ms = µJ).
    pub fn energy_uj(&self, latency_ms: f64) -> f64 {
        self.power.active_mw * latency_ms
    }
}

/// The text of a built-in profile.
fn builtin_text(name: &str) -> Option<&'static str> {
    BUILTIN
        .iter()
        .find(|(builtin, _)| *builtin == name)
        .map(|(_, text)| *text)
}

/// An error message when `text` is blank.
fn require_text(text: &str, what: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        Err(format!("{what} must not be empty"))
    } else {
        Ok(())
    }
}

/// Whether `s` is a calendar date written `YYYY-MM-DD` (month 1-12, day 1-31).
fn is_iso_date(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 10
        || b[4] != b'-'
        || b[7] != b'-'
        || !digits(0..4)
        || !digits(5..7)
        || !digits(8..10)
    {
        return false;
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(0);
    (1..=12).contains(&num(5..7)) && (1..=31).contains(&num(8..10))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn nrf52840_text() -> &'static str {
        builtin_text("nrf52840").unwrap()
    }

    /// The nRF52840 profile with the value of `key` in `[table]` replaced by `value`.
    fn edited_value(table: &str, key: &str, value: &str) -> String {
        let text = nrf52840_text();
        let start = text
            .find(&format!("[{table}]\n"))
            .unwrap_or_else(|| panic!("no [{table}] in the nrf52840 profile"));
        let at = start
            + text[start..]
                .find(&format!("\n{key} = "))
                .unwrap_or_else(|| panic!("no {key} in [{table}]"))
            + 1;
        let end = at + text[at..].find('\n').unwrap_or(text.len() - at);
        format!("{}{key} = {value}{}", &text[..at], &text[end..])
    }

    /// Replaces `from` with `to` in the nRF52840 profile, failing if `from` is absent (so a
    /// test cannot pass on an unchanged file).
    fn edited(from: &str, to: &str) -> String {
        let text = nrf52840_text();
        assert!(
            text.contains(from),
            "the nrf52840 profile no longer contains {from:?}"
        );
        text.replacen(from, to, 1)
    }

    fn invalid_field(text: &str) -> (String, String) {
        match Profile::from_toml_str(text, "user/bad.toml") {
            Err(ProfileError::Invalid {
                path,
                field,
                message,
            }) => {
                assert_eq!(path, PathBuf::from("user/bad.toml"));
                (field, message)
            }
            other => panic!("expected an Invalid error, got {other:?}"),
        }
    }

    fn parse_error(text: &str) -> String {
        match Profile::from_toml_str(text, "user/bad.toml") {
            Err(e @ ProfileError::Parse { .. }) => {
                let shown = e.to_string();
                assert!(shown.starts_with("user/bad.toml: "), "{shown}");
                shown
            }
            other => panic!("expected a Parse error, got {other:?}"),
        }
    }

    fn hw_profiles_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../hw-profiles")
    }

    /// Every file in `hw-profiles/` loads by path, the built-in table lists exactly those
    /// files, and a built-in loaded by name equals its file loaded by path.
    #[test]
    fn every_profile_file_loads_and_matches_the_builtin_table() {
        let mut on_disk = BTreeSet::new();
        for entry in std::fs::read_dir(hw_profiles_dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
            let from_file = Profile::load(path.to_str().unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                from_file.name,
                stem,
                "{}: name differs from file name",
                path.display()
            );
            let builtin = Profile::load(&stem)
                .unwrap_or_else(|e| panic!("{stem} is on disk but not built in: {e}"));
            assert_eq!(
                builtin, from_file,
                "{stem}: built-in copy differs from the file"
            );
            on_disk.insert(stem);
        }
        let table: BTreeSet<String> = Profile::builtin_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(
            table, on_disk,
            "the BUILTIN table and hw-profiles/ disagree"
        );
        assert!(
            on_disk.len() >= 7,
            "expected at least 7 profiles, found {on_disk:?}"
        );

        let names = Profile::builtin_names();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "BUILTIN must be sorted by name");
        let all = Profile::all_builtin().unwrap();
        assert_eq!(
            all.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            names
        );
    }

    /// The chip figures of issue 4: core, clock, SRAM and flash.
    #[test]
    fn builtin_figures_match_the_issue() {
        const KIB: u64 = 1024;
        const MIB: u64 = 1024 * KIB;
        let expected: [(&str, Core, u64, u64, u64); 7] = [
            ("nrf52840", Core::CortexM4f, 64_000_000, 256 * KIB, MIB),
            ("stm32l476", Core::CortexM4f, 80_000_000, 128 * KIB, MIB),
            ("stm32h743", Core::CortexM7, 480_000_000, MIB, 2 * MIB),
            (
                "apollo4-plus",
                Core::CortexM4f,
                192_000_000,
                2816 * KIB,
                2 * MIB,
            ),
            ("nrf5340", Core::CortexM33, 128_000_000, 512 * KIB, MIB),
            ("esp32-s3", Core::XtensaLx7, 240_000_000, 512 * KIB, 8 * MIB),
            (
                "qemu-mps2-an386",
                Core::CortexM4f,
                25_000_000,
                4 * MIB,
                4 * MIB,
            ),
        ];
        for (name, core, clock, sram, flash) in expected {
            let p = Profile::load(name).unwrap();
            assert_eq!(p.core, core, "{name} core");
            assert_eq!(p.clock_hz, Hz(clock), "{name} clock");
            assert_eq!(p.memory.sram_bytes, Bytes(sram), "{name} SRAM");
            assert_eq!(p.memory.flash_bytes, Bytes(flash), "{name} flash");
        }
    }

    /// Estimate-only, unit, target and probe-rs name per chip, as the issue and
    /// shared/EMBEDDED.md give them.
    #[test]
    fn builtin_targets_units_and_probe_names() {
        for p in Profile::all_builtin().unwrap() {
            assert_eq!(
                p.estimate_only,
                p.name == "esp32-s3",
                "{}: estimate_only",
                p.name
            );
            assert_eq!(
                p.rust_target.is_none(),
                p.estimate_only,
                "{}: rust_target",
                p.name
            );
            let unit = if p.name == "qemu-mps2-an386" {
                CostUnit::Instructions
            } else {
                CostUnit::Cycles
            };
            assert_eq!(p.cost.unit, unit, "{}: cost unit", p.name);
            // Only the emulator has been measured: the boards' coefficients are estimates
            // until a board is attached.
            let provenance = if p.name == "qemu-mps2-an386" {
                ProvenanceKind::CalibratedQemu
            } else {
                ProvenanceKind::Estimated
            };
            assert_eq!(p.cost.provenance.kind, provenance, "{}", p.name);
        }
        let probe = |name: &str| Profile::load(name).unwrap().probe_rs_chip;
        assert_eq!(probe("nrf52840").as_deref(), Some("nRF52840_xxAA"));
        assert_eq!(probe("stm32l476").as_deref(), Some("STM32L476RGTx"));
        assert_eq!(probe("stm32h743").as_deref(), Some("STM32H743ZITx"));
        assert_eq!(probe("nrf5340").as_deref(), Some("nRF5340_xxAA"));
        assert_eq!(probe("apollo4-plus"), None);
        assert_eq!(probe("esp32-s3"), None);
        assert_eq!(
            Profile::load("nrf5340").unwrap().rust_target.as_deref(),
            Some("thumbv8m.main-none-eabihf")
        );
    }

    /// A misspelt top-level key is an error that names the file and the key.
    #[test]
    fn unknown_top_level_field_is_rejected() {
        let shown = parse_error(&edited("clock_hz = ", "clok_hz = "));
        assert!(shown.contains("unknown field `clok_hz`"), "{shown}");
    }

    /// A misspelt key inside a table is rejected too (deny_unknown_fields on every table).
    #[test]
    fn unknown_nested_field_is_rejected() {
        let shown = parse_error(&edited(
            "[cost.conv]\n",
            "[cost.conv]\nb_per_outputs = 1.0\n",
        ));
        assert!(shown.contains("unknown field `b_per_outputs`"), "{shown}");
        let shown = parse_error(&edited(
            "sram_bytes = ",
            "sram_size_bytes = 1\nsram_bytes = ",
        ));
        assert!(shown.contains("unknown field `sram_size_bytes`"), "{shown}");
    }

    /// A missing required field is named.
    #[test]
    fn missing_field_is_rejected() {
        let shown = parse_error(&edited("latency_ms = 100.0", ""));
        assert!(shown.contains("missing field `latency_ms`"), "{shown}");
    }

    /// A negative clock is a parse error that shows the line and says what a clock is.
    #[test]
    fn negative_clock_is_rejected() {
        let shown = parse_error(&edited("clock_hz = 64_000_000", "clock_hz = -64_000_000"));
        assert!(shown.contains("clock_hz = -64_000_000"), "{shown}");
        assert!(shown.contains("positive number of hertz"), "{shown}");
    }

    /// A zero clock, and a clock written in MHz by mistake, are rejected.
    #[test]
    fn zero_or_absurd_clock_is_rejected() {
        let (field, msg) = invalid_field(&edited("clock_hz = 64_000_000", "clock_hz = 0"));
        assert_eq!(field, "clock_hz");
        assert!(msg.contains("positive"), "{msg}");
        let (field, msg) = invalid_field(&edited("clock_hz = 64_000_000", "clock_hz = 64"));
        assert_eq!(field, "clock_hz");
        assert!(msg.contains("64 MHz is 64_000_000"), "{msg}");
        let (field, _) = invalid_field(&edited(
            "clock_hz = 64_000_000",
            "clock_hz = 64_000_000_000",
        ));
        assert_eq!(field, "clock_hz");
    }

    /// Reserved SRAM at or above the chip's SRAM gives the issue's message, byte counts included.
    #[test]
    fn reserved_sram_not_below_sram_is_rejected() {
        let text = edited(
            "sram_reserved_bytes = 32_768",
            "sram_reserved_bytes = 300000",
        );
        let err = Profile::from_toml_str(&text, "user/bad.toml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "user/bad.toml: memory.sram_reserved_bytes: SRAM reserved by the application \
             (300000 B) is not smaller than the chip's SRAM (262144 B)"
        );
        let (field, _) = invalid_field(&edited(
            "sram_reserved_bytes = 32_768",
            "sram_reserved_bytes = 262_144",
        ));
        assert_eq!(field, "memory.sram_reserved_bytes");
    }

    /// Reserved flash at or above the chip's flash is rejected.
    #[test]
    fn reserved_flash_not_below_flash_is_rejected() {
        let (field, msg) = invalid_field(&edited(
            "flash_reserved_bytes = 258_048",
            "flash_reserved_bytes = 1_048_576",
        ));
        assert_eq!(field, "memory.flash_reserved_bytes");
        assert!(
            msg.contains("(1048576 B) is not smaller than the chip's flash (1048576 B)"),
            "{msg}"
        );
    }

    /// Zero SRAM, a negative size and an impossible largest region are rejected.
    #[test]
    fn bad_memory_sizes_are_rejected() {
        let (field, _) = invalid_field(&edited("sram_bytes = 262_144", "sram_bytes = 0"));
        assert_eq!(field, "memory.sram_bytes");
        let shown = parse_error(&edited("flash_bytes = 1_048_576", "flash_bytes = -1"));
        assert!(shown.contains("not negative: got -1"), "{shown}");
        let (field, _) = invalid_field(&edited(
            "sram_bytes = 262_144",
            "sram_bytes = 262_144\nsram_largest_region_bytes = 300_000",
        ));
        assert_eq!(field, "memory.sram_largest_region_bytes");
    }

    /// An ADC rate of zero, a negative one, or NaN is rejected.
    #[test]
    fn bad_adc_rate_is_rejected() {
        for bad in ["0.0", "-250.0", "nan", "1e9"] {
            let (field, _) = invalid_field(&edited(
                "adc_sample_rate_hz = 250.0",
                &format!("adc_sample_rate_hz = {bad}"),
            ));
            assert_eq!(field, "ecg.adc_sample_rate_hz", "rate {bad}");
        }
    }

    /// A latency budget that is zero, negative or infinite is rejected.
    #[test]
    fn bad_latency_budget_is_rejected() {
        for bad in ["0.0", "-5.0", "inf"] {
            let (field, _) = invalid_field(&edited(
                "latency_ms = 100.0",
                &format!("latency_ms = {bad}"),
            ));
            assert_eq!(field, "budget.latency_ms", "budget {bad}");
        }
    }

    /// Negative and NaN coefficients are rejected with the kernel and coefficient named.
    #[test]
    fn negative_or_nan_coefficient_is_rejected() {
        let (field, msg) = invalid_field(&edited_value("cost.conv", "a_per_mac", "-2.5"));
        assert_eq!(field, "cost.conv.a_per_mac");
        assert!(msg.contains("cycles"), "{msg}");
        let (field, _) = invalid_field(&edited_value("cost.elementwise", "d_fixed", "nan"));
        assert_eq!(field, "cost.elementwise.d_fixed");
    }

    /// Zero or negative active power is rejected.
    #[test]
    fn bad_power_is_rejected() {
        let (field, _) = invalid_field(&edited("active_mw = 9.9", "active_mw = 0"));
        assert_eq!(field, "power.active_mw");
    }

    /// A buildable profile without a Rust target is rejected; an estimate-only one is not.
    #[test]
    fn missing_rust_target_is_rejected_unless_estimate_only() {
        let without = edited("rust_target = \"thumbv7em-none-eabihf\"\n", "");
        let (field, msg) = invalid_field(&without);
        assert_eq!(field, "rust_target");
        assert!(msg.contains("estimate_only"), "{msg}");
        let estimate = without.replacen("clock_hz", "estimate_only = true\nclock_hz", 1);
        let p = Profile::from_toml_str(&estimate, "user/estimate.toml").unwrap();
        assert!(p.estimate_only && p.rust_target.is_none());
    }

    /// A Rust target that does not run on the declared core is rejected.
    #[test]
    fn rust_target_must_match_core() {
        let (field, msg) = invalid_field(&edited(
            "rust_target = \"thumbv7em-none-eabihf\"",
            "rust_target = \"thumbv6m-none-eabi\"",
        ));
        assert_eq!(field, "rust_target");
        assert!(msg.contains("thumbv7em-none-eabihf"), "{msg}");
    }

    /// The Xtensa core cannot be buildable.
    #[test]
    fn xtensa_profile_must_be_estimate_only() {
        let text = builtin_text("esp32-s3").unwrap();
        assert!(text.contains("estimate_only = true"));
        let (field, _) =
            invalid_field(&text.replacen("estimate_only = true", "estimate_only = false", 1));
        assert_eq!(field, "rust_target");
    }

    /// Calibrated coefficients need a firmware version, measured ones a board too; dates are
    /// checked.
    #[test]
    fn provenance_is_checked() {
        let calibrated = edited("kind = \"estimated\"", "kind = \"calibrated-qemu\"");
        let (field, _) = invalid_field(&calibrated);
        assert_eq!(field, "cost.provenance.firmware_version");
        let with_fw = calibrated.replacen(
            "\nnote = ",
            "\nfirmware_version = \"0.1.0+abc1234\"\nfit_error_pct = 2.1\nnote = ",
            1,
        );
        let p = Profile::from_toml_str(&with_fw, "user/cal.toml").unwrap();
        assert_eq!(p.cost.provenance.kind, ProvenanceKind::CalibratedQemu);
        assert_eq!(
            p.cost.provenance.firmware_version.as_deref(),
            Some("0.1.0+abc1234")
        );

        let measured = with_fw.replacen("calibrated-qemu", "measured-board", 1);
        let (field, _) = invalid_field(&measured);
        assert_eq!(field, "cost.provenance.board");

        let date = |value| edited_value("cost.provenance", "date", value);
        let (field, _) = invalid_field(&date("\"01/12/2026\""));
        assert_eq!(field, "cost.provenance.date");
        let (field, _) = invalid_field(&date("\"2026-13-01\""));
        assert_eq!(field, "cost.provenance.date");

        let shown = parse_error(&edited("kind = \"estimated\"", "kind = \"guessed\""));
        assert!(shown.contains("guessed"), "{shown}");
    }

    /// A built-in whose `name` differs from its file name is rejected.
    #[test]
    fn builtin_name_must_match_file_name() {
        let err = Profile::from_builtin("stm32l476", nrf52840_text()).unwrap_err();
        match err {
            ProfileError::Invalid {
                path,
                field,
                message,
            } => {
                assert_eq!(path, PathBuf::from("hw-profiles/stm32l476.toml"));
                assert_eq!(field, "name");
                assert!(message.contains("`nrf52840`"), "{message}");
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
        let (field, _) = invalid_field(&edited("name = \"nrf52840\"", "name = \"My Chip\""));
        assert_eq!(field, "name");
    }

    /// A user's own profile loads by path, and its name need not be a built-in's.
    #[test]
    fn user_profile_loads_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("my-patch.toml");
        let text = edited("name = \"nrf52840\"", "name = \"my-patch\"").replacen(
            "sram_reserved_bytes = 32_768",
            "sram_reserved_bytes = 65_536",
            1,
        );
        std::fs::write(&path, text).unwrap();
        let p = Profile::load(path.to_str().unwrap()).unwrap();
        assert_eq!(p.name, "my-patch");
        assert_eq!(p.available_sram_bytes(), Bytes(262_144 - 65_536));
        assert_eq!(p, Profile::load_file(&path).unwrap());

        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, edited("clock_hz = 64_000_000", "clock_hz = -1")).unwrap();
        let shown = Profile::load(bad.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            shown.starts_with(&format!("{}: ", bad.display())),
            "{shown}"
        );
    }

    /// A missing file is an I/O error naming it; an unknown name lists the built-ins.
    #[test]
    fn missing_file_and_unknown_name() {
        match Profile::load("no/such/profile.toml") {
            Err(ProfileError::Io { path, .. }) => {
                assert_eq!(path, PathBuf::from("no/such/profile.toml"))
            }
            other => panic!("expected Io, got {other:?}"),
        }
        let shown = Profile::load("nrf52832").unwrap_err().to_string();
        assert!(shown.contains("`nrf52832`"), "{shown}");
        assert!(shown.contains("nrf52840, nrf5340"), "{shown}");
    }

    /// Available memory, latency and energy follow from the figures.
    #[test]
    fn helpers_compute_from_the_figures() {
        let p = Profile::load("nrf52840").unwrap();
        assert_eq!(p.available_sram_bytes(), Bytes(262_144 - 32_768));
        assert_eq!(p.available_flash_bytes(), Bytes(1_048_576 - 258_048));
        assert_eq!(p.sram_largest_region_bytes(), Bytes(262_144));
        assert_eq!(p.cycles_to_ms(64_000_000.0), 1000.0);
        assert_eq!(p.cycles_to_ms(0.0), 0.0);
        assert!((p.energy_uj(10.0) - 99.0).abs() < 1e-9);
        let l4 = Profile::load("stm32l476").unwrap();
        assert_eq!(l4.sram_largest_region_bytes(), Bytes(98_304));
        // a·MACs + b·outputs + c·inputs + d, plus e per unit of extra work.
        let c = Coefficients {
            a_per_mac: 2.5,
            b_per_output: 30.0,
            c_per_input: 1.0,
            d_fixed: 400.0,
            e_per_extra: 0.5,
        };
        assert_eq!(
            c.cost(1000, 10, 100),
            2.5 * 1000.0 + 30.0 * 10.0 + 100.0 + 400.0
        );
        assert_eq!(
            c.cost_with_extra(1000, 10, 100, 8),
            2.5 * 1000.0 + 30.0 * 10.0 + 100.0 + 400.0 + 4.0
        );
        // An optional kind without its own table uses its base kind's.
        assert_eq!(
            p.cost.coefficients(KernelKind::DenseScalar),
            p.cost.coefficients(KernelKind::Dense)
        );
    }

    /// Serialising a profile and parsing it back gives the same profile (so calibration can
    /// write profiles with the same schema).
    #[test]
    fn profiles_round_trip_through_toml() {
        for p in Profile::all_builtin().unwrap() {
            let text = toml::to_string(&p).unwrap();
            let back = Profile::from_toml_str(&text, "round-trip.toml")
                .unwrap_or_else(|e| panic!("{}: {e}\n{text}", p.name));
            assert_eq!(back, p);
        }
    }

    /// Enum names in profiles match their `as_str`.
    #[test]
    fn enum_names_match_as_str() {
        for kind in KernelKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        for core in [
            Core::CortexM0plus,
            Core::CortexM4f,
            Core::CortexM33,
            Core::XtensaLx7,
        ] {
            assert_eq!(serde_json::to_value(core).unwrap(), core.as_str());
        }
        for kind in [
            ProvenanceKind::Estimated,
            ProvenanceKind::CalibratedQemu,
            ProvenanceKind::MeasuredBoard,
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        assert_eq!(
            serde_json::to_value(CostUnit::Instructions).unwrap(),
            "instructions"
        );
    }
}
