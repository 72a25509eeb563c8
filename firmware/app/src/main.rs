//! The ecgnas kernel benchmark on QEMU's `mps2-an386` (Cortex-M4F).
//!
//! Runs each layer of [`layers::LAYERS`] once through the firmware's kernels (their DSP paths on
//! this Cortex-M4), times the call with SysTick, checks the output bit for bit against the
//! kernel's scalar path (see [`layers::Case::self_check`]) and prints one table row per layer:
//! MACs, instructions, instructions per MAC (with CMSIS-NN's figure beside it) and the FNV-1a
//! checksum of the output. Then [`layers::RANDOM_CASES`] random shapes and values
//! ([`layers::Workspace::random_case`]), each run through the DSP and the scalar path and
//! compared bit for bit. Last, one `checksum <layer> <hex>` line per layer and one for the
//! random cases, which `scripts/qemu-smoke.sh` compares with the host build of the same
//! kernels (`host-check/`).
//!
//! Timing: under QEMU's `-icount shift=0` one instruction takes 1 ns of virtual time and
//! SysTick, clocked from the 25 MHz core clock, ticks every 40 ns, so one tick is exactly 40
//! instructions and every run gives the same counts (resolution 40 instructions). These are
//! QEMU instruction counts, not Cortex-M4 cycles. QEMU has no DWT cycle counter.
//!
//! Exit status (semihosting `SYS_EXIT_EXTENDED`, QEMU's own status): 0 all layers ran and
//! matched their reference, 1 a kernel returned an error, 2 a mismatch between the DSP and the
//! scalar path (benchmark layer or random case), 3 a layer
//! too large for the workspace, 4 a layer ran too long to time (2^24 ticks), 5 the core
//! peripherals were already taken, 101 a panic.

#![no_std]
#![no_main]

mod layers;

use core::sync::atomic::{compiler_fence, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::entry;
use semihosting::{println, process};

use layers::{BenchError, Workspace, XorShift32, LAYERS, RANDOM_CASES, RANDOM_SEED};

/// Instructions per SysTick tick under `-icount shift=0` (25 MHz core clock, 1 ns/instruction).
const INSTRUCTIONS_PER_TICK: u64 = 40;

/// The largest SysTick reload value (24 bits).
const RELOAD: u32 = 0x00ff_ffff;

/// Why the benchmark stopped.
enum AppError {
    /// A layer failed (kernel error, mismatch, workspace).
    Bench(&'static str, BenchError),
    /// A layer took 2^24 ticks or more (about 671 M instructions).
    TimerWrapped(&'static str),
    /// `cortex_m::Peripherals::take` or the workspace singleton was already used.
    Taken,
}

impl AppError {
    fn exit_code(&self) -> i32 {
        match self {
            AppError::Bench(_, BenchError::Kernel(_)) => 1,
            AppError::Bench(_, BenchError::Mismatch { .. } | BenchError::Disagree) => 2,
            AppError::Bench(_, BenchError::Workspace) => 3,
            AppError::TimerWrapped(_) => 4,
            AppError::Taken => 5,
        }
    }
}

/// SysTick as a free-running down-counter on the core clock.
struct Timer {
    syst: SYST,
}

impl Timer {
    fn new(mut syst: SYST) -> Self {
        syst.disable_interrupt();
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_counter();
        Timer { syst }
    }

    /// Runs `f` and returns its result with the ticks it took, or `None` for the ticks when
    /// the counter reached zero (the region is too long to time).
    fn time<T>(&mut self, f: impl FnOnce() -> T) -> (T, Option<u32>) {
        // Restart from the reload value so that reaching zero (COUNTFLAG) means a wrap.
        self.syst.clear_current();
        while SYST::get_current() == 0 {}
        let _ = self.syst.has_wrapped(); // reading COUNTFLAG clears it
        let start = SYST::get_current();
        compiler_fence(Ordering::SeqCst);
        let value = f();
        compiler_fence(Ordering::SeqCst);
        let end = SYST::get_current();
        let wrapped = self.syst.has_wrapped();
        (value, (!wrapped).then(|| start.wrapping_sub(end)))
    }
}

/// `numerator / denominator` with two decimals, rounded, as `(whole, hundredths)`.
fn centi(numerator: u64, denominator: u64) -> (u64, u64) {
    let c = (numerator * 100 + denominator / 2) / denominator.max(1);
    (c / 100, c % 100)
}

#[entry]
fn main() -> ! {
    match run() {
        Ok(()) => process::exit(0),
        Err(e) => {
            match &e {
                AppError::Bench(layer, err) => println!("error: layer {layer}: {err}"),
                AppError::TimerWrapped(layer) => {
                    println!("error: layer {layer}: ran 2^24 SysTick ticks or more, not timed")
                }
                AppError::Taken => println!("error: core peripherals already taken"),
            }
            process::exit(e.exit_code())
        }
    }
}

fn run() -> Result<(), AppError> {
    let peripherals = cortex_m::Peripherals::take().ok_or(AppError::Taken)?;
    let mut timer = Timer::new(peripherals.SYST);
    // In .bss, so the size of the ELF shows it; about 64 KiB.
    let workspace: &'static mut Workspace =
        cortex_m::singleton!(: Workspace = Workspace::new()).ok_or(AppError::Taken)?;

    let ((), empty) = timer.time(|| ());
    println!("ecgnas kernel benchmark: QEMU mps2-an386 (Cortex-M4F), -icount shift=0");
    println!(
        "1 SysTick tick = {INSTRUCTIONS_PER_TICK} instructions; empty timed region: {} ticks",
        empty.unwrap_or(0)
    );
    println!(
        "{:<18} {:>3} {:>3} {:>2} {:>2} {:>5} {:>9} {:>12} {:>9} {:>8} {:>10} {:>5}",
        "layer",
        "in",
        "out",
        "k",
        "s",
        "len",
        "MACs",
        "instructions",
        "instr/MAC",
        "CMSIS-NN",
        "checksum",
        "check"
    );

    let mut checksums = [0u32; LAYERS.len()];
    let (mut total_macs, mut total_instructions) = (0u64, 0u64);
    for (index, layer) in LAYERS.iter().enumerate() {
        let fail = |e: BenchError| AppError::Bench(layer.name, e);
        let mut case = workspace
            .prepare(layer, layers::seed(index))
            .map_err(fail)?;
        let macs = case.macs().map_err(|e| fail(e.into()))? as u64;
        let (result, ticks) = timer.time(|| case.run());
        result.map_err(|e| fail(e.into()))?;
        let ticks = ticks.ok_or(AppError::TimerWrapped(layer.name))?;
        let checksum = layers::fnv1a(case.output());
        case.self_check().map_err(fail)?;
        checksums[index] = checksum;

        let instructions = u64::from(ticks) * INSTRUCTIONS_PER_TICK;
        total_macs += macs;
        total_instructions += instructions;
        let (whole, frac) = centi(instructions, macs);
        let (cin, cout) = layer.channels();
        let cmsis = layer.cmsis_nn_centi;
        let (cmsis_whole, cmsis_frac) = (cmsis / 100, cmsis % 100);
        if cmsis == 0 {
            println!(
                "{:<18} {:>3} {:>3} {:>2} {:>2} {:>5} {:>9} {:>12} {:>6}.{:02} {:>8} {:#010x} {:>5}",
                layer.name,
                cin,
                cout,
                layer.kernel,
                layer.stride,
                layer.length,
                macs,
                instructions,
                whole,
                frac,
                "-",
                checksum,
                "ok"
            );
        } else {
            println!(
                "{:<18} {:>3} {:>3} {:>2} {:>2} {:>5} {:>9} {:>12} {:>6}.{:02} {:>5}.{:02} {:#010x} {:>5}",
                layer.name,
                cin,
                cout,
                layer.kernel,
                layer.stride,
                layer.length,
                macs,
                instructions,
                whole,
                frac,
                cmsis_whole,
                cmsis_frac,
                checksum,
                "ok"
            );
        }
    }
    let (whole, frac) = centi(total_instructions, total_macs);
    println!(
        "{:<18} {:>22} {:>9} {:>12} {:>6}.{:02}",
        "total", "", total_macs, total_instructions, whole, frac
    );
    let mut rng = XorShift32::new(RANDOM_SEED);
    let mut random_hash = layers::fnv1a(&[]);
    for _ in 0..RANDOM_CASES {
        let hash = workspace
            .random_case(&mut rng)
            .map_err(|e| AppError::Bench("random", e))?;
        random_hash = layers::combine(random_hash, hash);
    }
    println!("random cases: {RANDOM_CASES}, DSP path equals scalar path bit for bit");
    for (layer, checksum) in LAYERS.iter().zip(checksums) {
        println!("checksum {} {:#010x}", layer.name, checksum);
    }
    println!("checksum random_cases {random_hash:#010x}");
    Ok(())
}
