//! The cost model's calibration on the board: many networks (stand-in weights, the real layer
//! shapes and quantisation parameters), each run once on a pseudo-random window, the
//! preprocessing and every layer timed.
//!
//! Writes `calibration.bin` (semihosting): per network, `u32` little-endian instructions for
//! the preprocessing (with the input quantisation), then for each of its layers. Instructions =
//! 40 x SysTick ticks under QEMU's `-icount shift=0` (cycles on a real core).
//!
//! Exit status: 0 done; 1 the file could not be written; 3 preprocessing refused a window; 4 a
//! network refused to run; 5 a network took 2^24 ticks or more; 6 the peripherals were taken;
//! 101 a panic.

#![no_std]
#![no_main]

#[allow(missing_docs, clippy::all)]
mod bench {
    include!(concat!(env!("OUT_DIR"), "/bench.rs"));
}

use core::sync::atomic::{compiler_fence, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::entry;
use ecgnas_firmware::model::slot_mut;
use ecgnas_firmware::preprocess::quantize_value;
use semihosting::fs::File;
use semihosting::io::Write;
use semihosting::{println, process};

use bench::*;

const INSTRUCTIONS_PER_TICK: u32 = 40;
const RELOAD: u32 = 0x00ff_ffff;

struct Buffers {
    raw: [f32; MAX_VALUES],
    lead: [f32; MAX_SAMPLES],
    scratch: [f32; MAX_SAMPLES],
    arena: [i8; MAX_ARENA],
    ticks: [u32; MAX_LAYERS],
}

#[entry]
fn main() -> ! {
    let code = match run() {
        Ok(()) => 0,
        Err(code) => code,
    };
    println!("ecgnas calibrate: exit {code}");
    process::exit(code)
}

fn run() -> Result<(), i32> {
    let peripherals = cortex_m::Peripherals::take().ok_or(6)?;
    let mut syst = peripherals.SYST;
    syst.disable_interrupt();
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    syst.enable_counter();
    let b: &'static mut Buffers = cortex_m::singleton!(: Buffers = Buffers {
        raw: [0.0; MAX_VALUES],
        lead: [0.0; MAX_SAMPLES],
        scratch: [0.0; MAX_SAMPLES],
        arena: [0; MAX_ARENA],
        ticks: [0; MAX_LAYERS],
    })
    .ok_or(6)?;
    let mut out = File::create(c"calibration.bin").map_err(|_| 1)?;
    let mut state = 0x1234_5678u32;
    for bench in BENCHES.iter() {
        let window = bench.pipeline.window;
        let samples = bench.pipeline.output_len();
        for v in b.raw[..bench.leads * window].iter_mut() {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            *v = (state % 2001) as f32 / 1000.0 - 1.0;
        }
        syst.clear_current();
        while SYST::get_current() == 0 {}
        let _ = syst.has_wrapped();
        let start = SYST::get_current();
        compiler_fence(Ordering::SeqCst);
        for lead in 0..bench.leads {
            bench
                .pipeline
                .run(
                    &b.raw[lead * window..(lead + 1) * window],
                    &mut b.lead[..samples],
                    &mut b.scratch[..samples],
                )
                .map_err(|_| 3)?;
            let slot = slot_mut(&mut b.arena, bench.model.input).ok_or(4)?;
            for (t, &x) in b.lead[..samples].iter().enumerate() {
                if let Some(q) = slot.get_mut(t * bench.leads + lead) {
                    *q = quantize_value(x, bench.input_scale, bench.input_zero_point);
                }
            }
        }
        compiler_fence(Ordering::SeqCst);
        let preprocessed = SYST::get_current();
        let ticks = &mut b.ticks;
        bench
            .model
            .run_observed(&mut b.arena, |i, _| {
                if let Some(t) = ticks.get_mut(i) {
                    *t = SYST::get_current();
                }
            })
            .map_err(|_| 4)?;
        if syst.has_wrapped() {
            return Err(5);
        }
        let mut previous = preprocessed;
        out.write_all(&((start - preprocessed) * INSTRUCTIONS_PER_TICK).to_le_bytes())
            .map_err(|_| 1)?;
        for &t in &b.ticks[..bench.model.layers.len()] {
            out.write_all(&(previous.wrapping_sub(t) * INSTRUCTIONS_PER_TICK).to_le_bytes())
                .map_err(|_| 1)?;
            previous = t;
        }
    }
    Ok(())
}
