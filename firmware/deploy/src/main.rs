//! One exported ecgnas model on the board: read test windows from the host, run the whole
//! pipeline (preprocessing, input quantisation, the int8 network) on each, and write back the
//! int8 logits and what each inference cost.
//!
//! Files (semihosting, in the host's working directory):
//! - `vectors.bin` in: the magic `ECGV`, then `u32` little-endian `n`, `values` (leads x window
//!   samples) and `side` (RR inputs), then per window `values` f32 then `side` f32;
//! - `outputs.bin` out: per window the `CLASSES` int8 logits, then `u32` instructions for the
//!   whole inference, for the preprocessing, and for each layer.
//!
//! Cost: SysTick on the core clock under QEMU's `-icount shift=0` ticks once every 40
//! instructions, so instructions = 40 x ticks (resolution 40). On a real core the same counter
//! counts cycles.
//!
//! Exit status: 0 every window ran; 1 a file could not be read or written; 2 `vectors.bin`
//! does not fit this model; 3 preprocessing refused a window; 4 the network refused to run;
//! 5 an inference took 2^24 ticks or more; 6 the peripherals were taken; 101 a panic.

#![no_std]
#![no_main]

#[allow(missing_docs, clippy::all)]
mod model {
    include!(concat!(env!("OUT_DIR"), "/model.rs"));
}

use core::sync::atomic::{compiler_fence, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::entry;
use ecgnas_firmware::model::slot_mut;
use ecgnas_firmware::preprocess::quantize_value;
use semihosting::fs::File;
use semihosting::io::{Read, Write};
use semihosting::{println, process};

use model::*;

/// Instructions per SysTick tick under `-icount shift=0`.
const INSTRUCTIONS_PER_TICK: u32 = 40;
/// The largest SysTick reload value (24 bits).
const RELOAD: u32 = 0x00ff_ffff;
/// Values of one window.
const VALUES: usize = LEADS * WINDOW;

/// Why the run stopped.
enum AppError {
    Io,
    Vectors,
    Preprocess,
    Network,
    TooLong,
    Taken,
}

impl AppError {
    fn exit_code(&self) -> i32 {
        match self {
            AppError::Io => 1,
            AppError::Vectors => 2,
            AppError::Preprocess => 3,
            AppError::Network => 4,
            AppError::TooLong => 5,
            AppError::Taken => 6,
        }
    }
}

/// The buffers of one inference, in .bss so the ELF's size shows them.
struct Buffers {
    raw: [f32; VALUES],
    lead: [f32; NETWORK_SAMPLES],
    scratch: [f32; NETWORK_SAMPLES],
    side: [f32; SIDE_BUFFER],
    arena: [i8; ARENA_LEN],
    layer_ticks: [u32; N_LAYERS],
}

fn read_u32(file: &mut File) -> Result<u32, AppError> {
    let mut b = [0u8; 4];
    file.read_exact(&mut b).map_err(|_| AppError::Io)?;
    Ok(u32::from_le_bytes(b))
}

/// Reads `out.len()` little-endian f32 values, 64 at a time.
fn read_f32s(file: &mut File, out: &mut [f32]) -> Result<(), AppError> {
    let mut bytes = [0u8; 256];
    for chunk in out.chunks_mut(64) {
        let n = chunk.len() * 4;
        file.read_exact(&mut bytes[..n]).map_err(|_| AppError::Io)?;
        for (v, b) in chunk.iter_mut().zip(bytes[..n].chunks_exact(4)) {
            *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
    }
    Ok(())
}

#[entry]
fn main() -> ! {
    match run() {
        Ok(n) => {
            println!("ecgnas deploy: {n} windows done");
            process::exit(0)
        }
        Err(e) => {
            println!("ecgnas deploy: error {}", e.exit_code());
            process::exit(e.exit_code())
        }
    }
}

fn run() -> Result<u32, AppError> {
    let peripherals = cortex_m::Peripherals::take().ok_or(AppError::Taken)?;
    let mut syst = peripherals.SYST;
    syst.disable_interrupt();
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    syst.enable_counter();
    let buffers: &'static mut Buffers = cortex_m::singleton!(: Buffers = Buffers {
        raw: [0.0; VALUES],
        lead: [0.0; NETWORK_SAMPLES],
        scratch: [0.0; NETWORK_SAMPLES],
        side: [0.0; SIDE_BUFFER],
        arena: [0; ARENA_LEN],
        layer_ticks: [0; N_LAYERS],
    })
    .ok_or(AppError::Taken)?;

    let mut input = File::open(c"vectors.bin").map_err(|_| AppError::Io)?;
    let mut output = File::create(c"outputs.bin").map_err(|_| AppError::Io)?;
    let mut magic = [0u8; 4];
    input.read_exact(&mut magic).map_err(|_| AppError::Io)?;
    let n = read_u32(&mut input)?;
    let values = read_u32(&mut input)? as usize;
    let side = read_u32(&mut input)? as usize;
    if &magic != b"ECGV" || values != VALUES || side != SIDE_INPUTS {
        return Err(AppError::Vectors);
    }
    for _ in 0..n {
        read_f32s(&mut input, &mut buffers.raw)?;
        read_f32s(&mut input, &mut buffers.side[..SIDE_INPUTS])?;

        // Restart the counter so that reaching zero (COUNTFLAG) means the inference wrapped.
        syst.clear_current();
        while SYST::get_current() == 0 {}
        let _ = syst.has_wrapped();
        let start = SYST::get_current();
        compiler_fence(Ordering::SeqCst);
        infer_input(buffers)?;
        compiler_fence(Ordering::SeqCst);
        let preprocessed = SYST::get_current();
        let ticks = &mut buffers.layer_ticks;
        MODEL
            .run_observed(&mut buffers.arena, |i, _| {
                if let Some(t) = ticks.get_mut(i) {
                    *t = SYST::get_current();
                }
            })
            .map_err(|_| AppError::Network)?;
        compiler_fence(Ordering::SeqCst);
        let end = SYST::get_current();
        if syst.has_wrapped() {
            return Err(AppError::TooLong);
        }

        output
            .write_all(
                &MODEL
                    .logits(&buffers.arena)
                    .iter()
                    .map(|&v| v as u8)
                    .collect_array(),
            )
            .map_err(|_| AppError::Io)?;
        let mut costs = [0u32; 2 + N_LAYERS];
        costs[0] = (start - end) * INSTRUCTIONS_PER_TICK;
        costs[1] = (start - preprocessed) * INSTRUCTIONS_PER_TICK;
        let mut previous = preprocessed;
        for (cost, &t) in costs[2..].iter_mut().zip(buffers.layer_ticks.iter()) {
            *cost = previous.wrapping_sub(t) * INSTRUCTIONS_PER_TICK;
            previous = t;
        }
        for c in costs {
            output
                .write_all(&c.to_le_bytes())
                .map_err(|_| AppError::Io)?;
        }
    }
    Ok(n)
}

/// The preprocessing of every lead, quantised into the arena's input slot (channels-last), and
/// the quantised side inputs.
fn infer_input(b: &mut Buffers) -> Result<(), AppError> {
    for lead in 0..LEADS {
        let raw = &b.raw[lead * WINDOW..(lead + 1) * WINDOW];
        PIPELINE
            .run(raw, &mut b.lead, &mut b.scratch)
            .map_err(|_| AppError::Preprocess)?;
        let slot = slot_mut(&mut b.arena, MODEL.input).ok_or(AppError::Network)?;
        for (t, &x) in b.lead.iter().enumerate() {
            if let Some(q) = slot.get_mut(t * LEADS + lead) {
                *q = quantize_value(x, INPUT_SCALE, INPUT_ZERO_POINT);
            }
        }
    }
    // An empty slot without RR inputs.
    let slot = slot_mut(&mut b.arena, MODEL.side_input).ok_or(AppError::Network)?;
    for (q, &x) in slot.iter_mut().zip(b.side.iter()) {
        *q = quantize_value(x, SIDE_SCALE, SIDE_ZERO_POINT);
    }
    Ok(())
}

/// Collects into a fixed array of the model's class count.
trait CollectArray {
    fn collect_array(self) -> [u8; CLASSES];
}

impl<I: Iterator<Item = u8>> CollectArray for I {
    fn collect_array(self) -> [u8; CLASSES] {
        let mut out = [0u8; CLASSES];
        for (o, v) in out.iter_mut().zip(self) {
            *o = v;
        }
        out
    }
}
