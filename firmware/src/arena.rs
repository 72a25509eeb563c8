//! The activation arena planner: buffer lifetimes in, offsets and the arena size out.
//!
//! The shape and the algorithm are TFLite Micro's `GreedyMemoryPlanner`
//! (`tensorflow/lite/micro/memory_planner/greedy_memory_planner.cc`): buffers are placed one by
//! one in decreasing size (ties in request order, TFLM's stable sort), each at the lowest
//! offset where it overlaps no already-placed buffer whose lifetime intersects its own. Here
//! offsets are also rounded up to an alignment. The arena size is the largest
//! `offset + size`.
//!
//! The host's SRAM prediction calls this same function, so it is a pure, deterministic
//! function of its inputs; no heap: the caller provides the offsets slice, which also serves as
//! the planner's bookkeeping. Cost is O(n^2) per buffer in the worst case, which is nothing for
//! the tens of buffers of a 1-D ECG network.
//!
//! The plan is never below [`live_lower_bound`] (the most bytes live at one time) and equals
//! it for chains (each buffer live from the layer that writes it to the layer that reads it)
//! whose sizes rise then fall (monotonic or unimodal, e.g. conv stacks that shrink through
//! pooling). It can exceed it for chains with a small buffer between two large ones: sizes
//! `[8, 3, 9, 10]` give 22 bytes against a bound of 19 (see the tests), as in TFLM.

use core::fmt;

/// The alignment ecgnas uses for activation buffers: a word, so that word loads of int8
/// quadruples (the DSP path's `LDR` + `SXTB16`) are aligned.
pub const DEFAULT_ALIGNMENT: usize = 4;

/// One buffer to place: `size` bytes, live from step `first_use` to step `last_use` inclusive
/// (TFLM's `AddBuffer(size, first_time_used, last_time_used)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferRequest {
    /// Bytes.
    pub size: usize,
    /// The first step (layer index) at which the buffer holds data.
    pub first_use: usize,
    /// The last step at which it is read; at least `first_use`.
    pub last_use: usize,
}

impl BufferRequest {
    const fn lives_with(&self, other: &BufferRequest) -> bool {
        self.first_use <= other.last_use && other.first_use <= self.last_use
    }
}

/// Why a plan could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArenaError {
    /// The offsets slice does not have one entry per request.
    OffsetsLen {
        /// The number of requests.
        expected: usize,
        /// The offsets slice's length.
        actual: usize,
    },
    /// The alignment is zero or not a power of two.
    Alignment(usize),
    /// A request ends before it starts (`last_use < first_use`).
    Lifetime {
        /// The request's index.
        buffer: usize,
    },
    /// An offset or the arena size does not fit in `usize`.
    Overflow,
}

impl fmt::Display for ArenaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArenaError::OffsetsLen { expected, actual } => write!(
                f,
                "offsets slice has {actual} entries for {expected} buffer requests"
            ),
            ArenaError::Alignment(a) => write!(f, "alignment {a} is not a power of two"),
            ArenaError::Lifetime { buffer } => {
                write!(f, "buffer {buffer} is last used before its first use")
            }
            ArenaError::Overflow => f.write_str("the arena size overflows usize"),
        }
    }
}

/// Marks a request not yet placed in the offsets slice. Never a real offset: a placed offset
/// plus a non-zero size is checked to fit, and zero-size buffers never move from 0.
const UNPLACED: usize = usize::MAX;

/// Plans the arena: writes each request's byte offset into `offsets_out` (same order) and
/// returns the arena size in bytes. Every offset is a multiple of `alignment`.
///
/// Errors on a mismatched `offsets_out`, a bad alignment, a request with `last_use <
/// first_use`, or a size that overflows. On error `offsets_out` holds no meaningful values.
///
/// ```
/// use ecgnas_firmware::arena::{plan, BufferRequest};
/// // A 3-layer chain: input (100 B), hidden (60 B), output (8 B).
/// let requests = [
///     BufferRequest { size: 100, first_use: 0, last_use: 0 },
///     BufferRequest { size: 60, first_use: 0, last_use: 1 },
///     BufferRequest { size: 8, first_use: 1, last_use: 2 },
/// ];
/// let mut offsets = [0; 3];
/// assert_eq!(plan(&requests, 4, &mut offsets), Ok(160));
/// assert_eq!(offsets, [0, 100, 0]);
/// ```
pub fn plan(
    requests: &[BufferRequest],
    alignment: usize,
    offsets_out: &mut [usize],
) -> Result<usize, ArenaError> {
    if !alignment.is_power_of_two() {
        return Err(ArenaError::Alignment(alignment));
    }
    if offsets_out.len() != requests.len() {
        return Err(ArenaError::OffsetsLen {
            expected: requests.len(),
            actual: offsets_out.len(),
        });
    }
    check_lifetimes(requests)?;
    offsets_out.fill(UNPLACED);

    let mut arena = 0usize;
    while let Some((index, wanted)) = next_largest_unplaced(requests, offsets_out) {
        let offset = lowest_free_offset(requests, offsets_out, &wanted, alignment)?;
        let end = offset
            .checked_add(wanted.size)
            .ok_or(ArenaError::Overflow)?;
        arena = arena.max(end);
        if let Some(slot) = offsets_out.get_mut(index) {
            *slot = offset;
        }
    }
    Ok(arena)
}

/// The most bytes live at any one step: no plan can be smaller.
pub fn live_lower_bound(requests: &[BufferRequest]) -> Result<usize, ArenaError> {
    check_lifetimes(requests)?;
    let mut bound = 0usize;
    // The maximum is reached at some buffer's first use.
    for step in requests.iter().map(|r| r.first_use) {
        let mut live = 0usize;
        for r in requests
            .iter()
            .filter(|r| r.first_use <= step && step <= r.last_use)
        {
            live = live.checked_add(r.size).ok_or(ArenaError::Overflow)?;
        }
        bound = bound.max(live);
    }
    Ok(bound)
}

fn check_lifetimes(requests: &[BufferRequest]) -> Result<(), ArenaError> {
    match requests.iter().position(|r| r.last_use < r.first_use) {
        Some(buffer) => Err(ArenaError::Lifetime { buffer }),
        None => Ok(()),
    }
}

/// The unplaced request with the largest size, the earliest on ties (TFLM's stable
/// descending sort).
fn next_largest_unplaced(
    requests: &[BufferRequest],
    offsets: &[usize],
) -> Option<(usize, BufferRequest)> {
    let mut best: Option<(usize, BufferRequest)> = None;
    for (i, (r, &offset)) in requests.iter().zip(offsets).enumerate() {
        if offset != UNPLACED {
            continue;
        }
        match best {
            Some((_, b)) if b.size >= r.size => {}
            _ => best = Some((i, *r)),
        }
    }
    best
}

/// The lowest multiple of `alignment` where `wanted` overlaps no placed buffer that is live at
/// the same time. Each conflicting buffer moves the candidate past its end; every skipped
/// offset overlaps that buffer, so the first conflict-free candidate is the lowest.
///
/// Overlap is `c < o + s_placed && o < c + s_wanted`; for a zero-size placed buffer this
/// blocks candidates strictly below it whose span covers it, which is what TFLM's gap walk
/// does too.
fn lowest_free_offset(
    requests: &[BufferRequest],
    offsets: &[usize],
    wanted: &BufferRequest,
    alignment: usize,
) -> Result<usize, ArenaError> {
    let mut candidate = 0usize;
    loop {
        let wanted_end = candidate
            .checked_add(wanted.size)
            .ok_or(ArenaError::Overflow)?;
        let conflict = requests
            .iter()
            .zip(offsets)
            .filter(|(_, &offset)| offset != UNPLACED)
            .find(|(placed, &offset)| {
                placed.lives_with(wanted)
                    && candidate < offset.saturating_add(placed.size)
                    && offset < wanted_end
            });
        match conflict {
            None => return Ok(candidate),
            Some((placed, &offset)) => {
                let end = offset
                    .checked_add(placed.size)
                    .ok_or(ArenaError::Overflow)?;
                candidate = align_up(end, alignment)?;
            }
        }
    }
}

fn align_up(value: usize, alignment: usize) -> Result<usize, ArenaError> {
    let mask = alignment - 1;
    value
        .checked_add(mask)
        .map(|v| v & !mask)
        .ok_or(ArenaError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    fn req(size: usize, first_use: usize, last_use: usize) -> BufferRequest {
        BufferRequest {
            size,
            first_use,
            last_use,
        }
    }

    fn run(requests: &[BufferRequest], alignment: usize) -> (usize, Vec<usize>) {
        let mut offsets = vec![0; requests.len()];
        let size = plan(requests, alignment, &mut offsets).unwrap();
        (size, offsets)
    }

    /// TFLM's offset-ordered gap walk (`CalculateOffsetsIfNeeded`, online buffers only),
    /// ported with a Vec as an independent implementation of the same plan.
    fn tflm_greedy(requests: &[BufferRequest]) -> (usize, Vec<usize>) {
        let mut order: Vec<usize> = (0..requests.len()).collect();
        order.sort_by(|&a, &b| requests[b].size.cmp(&requests[a].size)); // stable
        let mut offsets = vec![0usize; requests.len()];
        let mut by_offset: Vec<usize> = Vec::new(); // placed ids sorted by offset
        for &id in &order {
            let wanted = requests[id];
            let mut candidate: i64 = 0;
            let mut prior: Option<usize> = None; // position in by_offset
            loop {
                let start = prior.map_or(0, |p| p + 1);
                let next = (start..by_offset.len())
                    .find(|&pos| requests[by_offset[pos]].lives_with(&wanted));
                if let Some(p) = prior {
                    let e = by_offset[p];
                    candidate = candidate.max((offsets[e] + requests[e].size) as i64);
                }
                let Some(pos) = next else { break };
                let gap = offsets[by_offset[pos]] as i64 - candidate;
                if gap >= wanted.size as i64 {
                    break;
                }
                prior = Some(pos);
            }
            offsets[id] = candidate as usize;
            let at = by_offset
                .iter()
                .position(|&e| offsets[e] > candidate as usize)
                .unwrap_or(by_offset.len());
            by_offset.insert(at, id);
        }
        let size = (0..requests.len())
            .map(|i| offsets[i] + requests[i].size)
            .max()
            .unwrap_or(0);
        (size, offsets)
    }

    /// Most bytes live at any step, by brute force over all steps.
    fn brute_lower_bound(requests: &[BufferRequest]) -> usize {
        let last = requests.iter().map(|r| r.last_use).max().unwrap_or(0);
        (0..=last)
            .map(|t| {
                requests
                    .iter()
                    .filter(|r| r.first_use <= t && t <= r.last_use)
                    .map(|r| r.size)
                    .sum()
            })
            .max()
            .unwrap_or(0)
    }

    fn assert_valid(requests: &[BufferRequest], alignment: usize, size: usize, offsets: &[usize]) {
        for (i, (a, &oa)) in requests.iter().zip(offsets).enumerate() {
            assert_eq!(oa % alignment, 0, "buffer {i} misaligned");
            assert!(oa + a.size <= size, "buffer {i} outside the arena");
            for (j, (b, &ob)) in requests.iter().zip(offsets).enumerate().skip(i + 1) {
                let memory = oa < ob + b.size && ob < oa + a.size;
                assert!(
                    !(a.lives_with(b) && memory && a.size > 0 && b.size > 0),
                    "buffers {i} and {j} are live together and overlap"
                );
            }
        }
        let tight = requests
            .iter()
            .zip(offsets)
            .map(|(r, &o)| o + r.size)
            .max()
            .unwrap_or(0);
        assert_eq!(size, tight, "reported size is not the largest end");
    }

    fn requests() -> impl Strategy<Value = Vec<BufferRequest>> {
        proptest::collection::vec((0usize..2000, 0usize..20, 0usize..6), 0..24).prop_map(|v| {
            v.into_iter()
                .map(|(size, first, len)| req(size, first, first + len))
                .collect()
        })
    }

    /// A chain of `sizes.len()` buffers: buffer i is written by layer i - 1 and read by layer i.
    fn chain(sizes: &[usize]) -> Vec<BufferRequest> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &s)| req(s, i.saturating_sub(1), i))
            .collect()
    }

    proptest! {
        #[test]
        fn plans_are_valid_and_above_the_bound(
            reqs in requests(),
            alignment in prop_oneof![Just(1usize), Just(2), Just(4), Just(8), Just(16)],
        ) {
            let (size, offsets) = run(&reqs, alignment);
            assert_valid(&reqs, alignment, size, &offsets);
            let bound = brute_lower_bound(&reqs);
            prop_assert_eq!(live_lower_bound(&reqs), Ok(bound));
            prop_assert!(size >= bound);
            // Deterministic: the same requests give the same plan.
            prop_assert_eq!(run(&reqs, alignment), (size, offsets));
        }

        #[test]
        fn equals_tflm_greedy_planner(reqs in requests(), align_shift in 0u32..5) {
            prop_assert_eq!(run(&reqs, 1), tflm_greedy(&reqs));
            // With sizes that are multiples of the alignment, alignment changes nothing.
            let alignment = 1usize << align_shift;
            let aligned: Vec<_> = reqs
                .iter()
                .map(|r| req(r.size * alignment, r.first_use, r.last_use))
                .collect();
            prop_assert_eq!(run(&aligned, alignment), tflm_greedy(&aligned));
        }

        #[test]
        fn chains_without_valleys_reach_the_bound(
            rising in proptest::collection::vec(1usize..500, 0..10),
            mut falling in proptest::collection::vec(1usize..500, 0..10),
            alignment in prop_oneof![Just(1usize), Just(4)],
        ) {
            // Strictly rising, then non-increasing: no buffer is placed after both neighbours.
            let mut rising = rising;
            rising.sort_unstable();
            rising.dedup();
            falling.sort_unstable_by(|a, b| b.cmp(a));
            let sizes: Vec<usize> =
                rising.iter().chain(&falling).map(|s| s * alignment).collect();
            prop_assert!(!has_valley(&sizes));
            let reqs = chain(&sizes);
            let (size, offsets) = run(&reqs, alignment);
            assert_valid(&reqs, alignment, size, &offsets);
            prop_assert_eq!(size, brute_lower_bound(&reqs));
        }

        #[test]
        fn random_chains_reach_the_bound_unless_a_valley(
            sizes in proptest::collection::vec(0usize..64, 0..8),
        ) {
            let reqs = chain(&sizes);
            let (size, offsets) = run(&reqs, 1);
            assert_valid(&reqs, 1, size, &offsets);
            let bound = brute_lower_bound(&reqs);
            prop_assert!(size >= bound);
            if !has_valley(&sizes) {
                prop_assert_eq!(size, bound);
            }
        }
    }

    /// A buffer the greedy order places after both of its chain neighbours (sizes desc, index
    /// asc): `s[i - 1] >= s[i] < s[i + 1]`. Without one, the greedy plan of a chain is optimal:
    /// each buffer is placed with at most one live neighbour already down, alternately at 0 and
    /// on top of it.
    fn has_valley(sizes: &[usize]) -> bool {
        sizes.windows(3).any(|w| w[0] >= w[1] && w[2] > w[1])
    }

    #[test]
    fn tflm_test_cases() {
        // greedy_memory_planner_test.cc, TestGreedyBasics.
        let reqs = [req(10, 0, 1), req(20, 2, 3)];
        assert_eq!(run(&reqs, 1), (20, vec![0, 0]));
        // TestGreedyMedium.
        let reqs = [
            req(10, 0, 1),
            req(20, 1, 2),
            req(30, 2, 3),
            req(40, 3, 4),
            req(50, 0, 1),
        ];
        assert_eq!(run(&reqs, 1), (90, vec![50, 70, 40, 0, 0]));
        // TestOverlapCase.
        let reqs = [req(100, 0, 1), req(50, 2, 3), req(20, 1, 2)];
        assert_eq!(run(&reqs, 1).0, 120);
    }

    #[test]
    fn tflm_person_detection_buffers() {
        // TestPersonDetectionModel: the 250 KB MobileNet's buffers; TFLM only asserts the plan
        // is below the 241 027-byte sum. We also check validity and the TFLM port.
        let reqs = [
            req(9216, 0, 29),
            req(3, 28, 29),
            req(256, 27, 28),
            req(2304, 26, 27),
            req(2304, 25, 26),
            req(2304, 24, 25),
            req(1152, 23, 24),
            req(4608, 22, 23),
            req(4608, 21, 22),
            req(4608, 20, 21),
            req(4608, 19, 20),
            req(4608, 18, 19),
            req(4608, 17, 18),
            req(4608, 16, 17),
            req(4608, 15, 16),
            req(4608, 14, 15),
            req(4608, 13, 14),
            req(4608, 12, 13),
            req(2304, 11, 12),
            req(9216, 10, 11),
            req(9216, 9, 10),
            req(9216, 8, 9),
            req(4608, 7, 8),
            req(18432, 6, 7),
            req(18432, 5, 6),
            req(18432, 4, 5),
            req(9216, 3, 4),
            req(36864, 2, 3),
            req(18432, 1, 2),
            req(18432, 0, 1),
        ];
        let (size, offsets) = run(&reqs, 1);
        assert_valid(&reqs, 1, size, &offsets);
        assert!(size < 241_027);
        assert_eq!((size, offsets), tflm_greedy(&reqs));
        assert_eq!(size, live_lower_bound(&reqs).unwrap());
    }

    #[test]
    fn valley_chain_exceeds_the_bound() {
        // Known limit of the greedy order (and of TFLM's): 10 and 9 stack first, 8 goes to 0,
        // and 3 (live with 8 and 9) fits neither the 2-byte gap nor below them.
        let reqs = chain(&[8, 3, 9, 10]);
        assert_eq!(live_lower_bound(&reqs), Ok(19));
        assert_eq!(run(&reqs, 1), (22, vec![0, 19, 10, 0]));
        assert_eq!(tflm_greedy(&reqs), (22, vec![0, 19, 10, 0]));
    }

    #[test]
    fn conv_pool_chain_with_level_valleys_reaches_the_bound() {
        // input [1000][1], conv [1000][16], pool [500][16], conv [500][32], pool [250][16]:
        // the pooled buffers are valleys, but both their neighbours sit at 0.
        let reqs = chain(&[1000, 16000, 8000, 16000, 4000]);
        assert_eq!(live_lower_bound(&reqs), Ok(24000));
        assert_eq!(run(&reqs, 4), (24000, vec![16000, 0, 16000, 0, 16000]));
    }

    #[test]
    fn alignment_rounds_offsets_up() {
        let reqs = [req(5, 0, 1), req(3, 1, 2), req(7, 0, 2)];
        // 7 at 0; 5 at align(7) = 8; 3 live with both: align(13) = 16.
        assert_eq!(run(&reqs, 8), (19, vec![8, 16, 0]));
        assert_eq!(run(&reqs, 1), (15, vec![7, 12, 0]));
    }

    #[test]
    fn empty_and_zero_size() {
        assert_eq!(plan(&[], 4, &mut []), Ok(0));
        let reqs = [req(0, 0, 3), req(16, 0, 3)];
        assert_eq!(run(&reqs, 4), (16, vec![0, 0]));
    }

    #[test]
    fn errors() {
        let reqs = [req(4, 0, 1), req(4, 2, 1)];
        let mut offsets = [0; 2];
        assert_eq!(
            plan(&reqs, 4, &mut offsets),
            Err(ArenaError::Lifetime { buffer: 1 })
        );
        assert_eq!(
            live_lower_bound(&reqs),
            Err(ArenaError::Lifetime { buffer: 1 })
        );
        assert_eq!(
            plan(&reqs[..1], 4, &mut offsets),
            Err(ArenaError::OffsetsLen {
                expected: 1,
                actual: 2
            })
        );
        assert_eq!(
            plan(&reqs[..1], 0, &mut offsets[..1]),
            Err(ArenaError::Alignment(0))
        );
        assert_eq!(
            plan(&reqs[..1], 12, &mut offsets[..1]),
            Err(ArenaError::Alignment(12))
        );
        let huge = [req(usize::MAX, 0, 1), req(1, 0, 1)];
        assert_eq!(plan(&huge, 1, &mut offsets), Err(ArenaError::Overflow));
        assert_eq!(live_lower_bound(&huge), Err(ArenaError::Overflow));
        let huge = [req(usize::MAX - 2, 0, 1), req(1, 0, 1)];
        assert_eq!(plan(&huge, 4, &mut offsets), Err(ArenaError::Overflow));
    }
}
