//! Firmware self-test: proves that logging, computing, instruction counting and exiting with
//! a status code all work under QEMU, that the core's dispatched kernels (hand-scheduled
//! `asm` on cores with DSP or FPU) return the same bits as the portable ones, and that the
//! sequence topologies (bidirectional windows, projected LSTM, MLP heads, generation) compute
//! the host's golden outputs bit for bit (`selftest/topologies.rs`). Exits 0 on success.
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use tinyrnn_firmware::{exit, fail, icount, EXIT_SUCCESS};

// Not `src/bin/topologies.rs`, which Cargo would build as a binary of its own.
#[path = "selftest/topologies.rs"]
mod topologies;

/// A small integer computation with a known answer: the sum of squares 1² + … + n².
#[inline(never)]
fn sum_of_squares(n: u32) -> u32 {
    (1..=n).map(|i| black_box(i * i)).sum()
}

/// The loop whose instruction count is measured: `n` rounds of a multiply-add whose result
/// the optimiser cannot see through.
#[inline(never)]
fn dummy_loop(n: u32) -> u32 {
    let mut acc = 0u32;
    for i in 0..n {
        acc = black_box(acc.wrapping_mul(31).wrapping_add(i));
    }
    acc
}

/// A deterministic pseudo-random sequence (LCG) for kernel test data.
struct Lcg(u32);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        self.0
    }
}

/// Every length 0..=70 at every starting alignment of each operand, random values with the
/// extremes mixed in: the dispatched dot products must equal the portable ones bit for bit.
/// Returns the number of comparisons.
fn kernels_match_portable() -> u32 {
    use tinyrnn::kernel::{self, portable};
    let mut rng = Lcg(1);
    let mut w8 = [0i8; 80];
    let mut w16 = [0i16; 80];
    let mut x16 = [0i16; 80];
    let mut wf = [0f32; 80];
    let mut xf = [0f32; 80];
    let mut checks = 0;
    for round in 0..4 {
        for k in 0..80 {
            let (a, b) = (rng.next(), rng.next());
            (w8[k], w16[k], x16[k]) = match round {
                // Round 0: every product at its extreme, the worst case for the accumulator.
                0 => (i8::MIN, i16::MIN, i16::MIN),
                _ => ((a >> 24) as i8, (a >> 16) as i16, (b >> 16) as i16),
            };
            wf[k] = (a >> 8) as f32 / (1u32 << 23) as f32 - 1.0;
            xf[k] = (b >> 8) as f32 / (1u32 << 22) as f32 - 2.0;
        }
        for len in 0..=70 {
            for (w_at, x_at) in [(0, 0), (1, 0), (0, 1), (1, 1), (2, 3)] {
                let (w, x) = (&w16[w_at..w_at + len], &x16[x_at..x_at + len]);
                if kernel::dot_i16(black_box(w), black_box(x)) != portable::dot_i16(w, x) {
                    defmt::error!(
                        "dot_i16 len={=usize} at ({=usize},{=usize})",
                        len,
                        w_at,
                        x_at
                    );
                    fail("dot_i16 differs from the portable kernel");
                }
                let w = &w8[w_at..w_at + len];
                if kernel::dot_i8(black_box(w), black_box(x)) != portable::dot_i8(w, x) {
                    defmt::error!(
                        "dot_i8 len={=usize} at ({=usize},{=usize})",
                        len,
                        w_at,
                        x_at
                    );
                    fail("dot_i8 differs from the portable kernel");
                }
                let (w, x) = (&wf[w_at..w_at + len], &xf[x_at..x_at + len]);
                let (got, want) = (
                    kernel::dot_f32(black_box(w), black_box(x)),
                    portable::dot_f32(w, x),
                );
                if got.to_bits() != want.to_bits() {
                    defmt::error!(
                        "dot_f32 len={=usize} at ({=usize},{=usize})",
                        len,
                        w_at,
                        x_at
                    );
                    fail("dot_f32 differs from the portable kernel");
                }
                checks += 3;
            }
            checks += i8_rows_match::<2>(&w8, &x16, len);
            checks += i8_rows_match::<3>(&w8, &x16, len);
            checks += i8_rows_match::<4>(&w8, &x16, len);
            checks += i16_rows_match::<2>(&w16, &x16, len);
            checks += i16_rows_match::<3>(&w16, &x16, len);
            checks += i16_rows_match::<4>(&w16, &x16, len);
            checks += fused_rows_match::<2>(&wf, &xf, len);
            checks += fused_rows_match::<3>(&wf, &xf, len);
            checks += fused_rows_match::<4>(&wf, &xf, len);
        }
    }
    checks
}

/// `kernel::dot_i8_rows` (rows two at a time on DSP cores) must equal one portable `dot_i8` per
/// row, for rows that start at different alignments. Returns the number of comparisons.
fn i8_rows_match<const G: usize>(w: &[i8], x: &[i16], len: usize) -> u32 {
    use tinyrnn::kernel::{self, portable};
    rows_match::<i8, G>(
        w,
        x,
        len,
        kernel::dot_i8_rows,
        portable::dot_i8,
        "dot_i8_rows",
    )
}

/// `kernel::dot_i16_rows` (two or three rows per pass on Cortex-M3) must equal one portable
/// `dot_i16` per row, as [`i8_rows_match`].
fn i16_rows_match<const G: usize>(w: &[i16], x: &[i16], len: usize) -> u32 {
    use tinyrnn::kernel::{self, portable};
    rows_match::<i16, G>(
        w,
        x,
        len,
        kernel::dot_i16_rows,
        portable::dot_i16,
        "dot_i16_rows",
    )
}

/// `rows(G rows of w, x)` against `one(row, x)` for each row; row g starts at g·len + g, so
/// consecutive rows are at every relative alignment. Returns the number of comparisons.
fn rows_match<W, const G: usize>(
    w: &[W],
    x: &[i16],
    len: usize,
    rows: fn([&[W]; G], &[i16]) -> [i64; G],
    one: fn(&[W], &[i16]) -> i64,
    name: &str,
) -> u32 {
    let len = len.min((w.len() - G) / G).min(x.len() - 1);
    let w_rows: [&[W]; G] = core::array::from_fn(|g| &w[g * len + g..(g + 1) * len + g]);
    let x = &x[1..1 + len];
    let got = rows(black_box(w_rows), black_box(x));
    for (g, (&got, row)) in got.iter().zip(w_rows).enumerate() {
        if got != one(row, x) {
            defmt::error!(
                "{=str}::<{=usize}> row {=usize} len={=usize}",
                name,
                G,
                g,
                len
            );
            fail("a multi-row kernel differs from the portable kernel");
        }
    }
    G as u32
}

/// Terms per row in [`long_rows_match`]: more than one block of 510 (the Thumb-1 multi-row
/// kernel's exact `i32` sum), odd, so that a block boundary, a second block and a last single
/// term are all crossed.
const LONG_ROW: usize = 601;

/// Rows of [`LONG_ROW`] extreme and random terms through `kernel::dot_i8_rows` and
/// `kernel::dot_i16_rows` (2, 3 and 4 rows) and `kernel::dot_i16`, against the portable kernels. Returns the number of comparisons.
fn long_rows_match() -> u32 {
    use tinyrnn::kernel::{self, portable};
    let mut rng = Lcg(7);
    let mut w8 = [0i8; 4 * LONG_ROW];
    let mut x16 = [0i16; LONG_ROW];
    let mut checks = 0;
    for round in 0..2 {
        for w in w8.iter_mut() {
            *w = if round == 0 {
                i8::MIN
            } else {
                (rng.next() >> 24) as i8
            };
        }
        for x in x16.iter_mut() {
            *x = if round == 0 {
                i16::MIN
            } else {
                (rng.next() >> 16) as i16
            };
        }
        checks += long_rows_match_of::<i8, 2>(&w8, &x16, kernel::dot_i8_rows, portable::dot_i8);
        checks += long_rows_match_of::<i8, 3>(&w8, &x16, kernel::dot_i8_rows, portable::dot_i8);
        checks += long_rows_match_of::<i8, 4>(&w8, &x16, kernel::dot_i8_rows, portable::dot_i8);
        // The same bits as 16-bit weights: one row, and 2, 3 and 4 rows.
        let mut w16 = [0i16; 4 * LONG_ROW];
        for (w16, &w8) in w16.iter_mut().zip(&w8) {
            *w16 = (w8 as i16) << 8 | (w8 as u8 as i16);
        }
        let row = &w16[..LONG_ROW];
        if kernel::dot_i16(black_box(row), black_box(&x16)) != portable::dot_i16(row, &x16) {
            fail("dot_i16 differs from the portable kernel on a long row");
        }
        checks += 1;
        let one = portable::dot_i16;
        checks += long_rows_match_of::<i16, 2>(&w16, &x16, kernel::dot_i16_rows, one);
        checks += long_rows_match_of::<i16, 3>(&w16, &x16, kernel::dot_i16_rows, one);
        checks += long_rows_match_of::<i16, 4>(&w16, &x16, kernel::dot_i16_rows, one);
    }
    checks
}

/// `G` rows of [`LONG_ROW`] weights from `w` against `x`, as [`rows_match`] does.
fn long_rows_match_of<W, const G: usize>(
    w: &[W],
    x: &[i16],
    rows: fn([&[W]; G], &[i16]) -> [i64; G],
    one: fn(&[W], &[i16]) -> i64,
) -> u32 {
    let w_rows: [&[W]; G] = core::array::from_fn(|g| &w[g * LONG_ROW..(g + 1) * LONG_ROW]);
    let got = rows(black_box(w_rows), black_box(x));
    for (&got, row) in got.iter().zip(w_rows) {
        if got != one(row, x) {
            defmt::error!("{=usize} rows of {=usize}", G, LONG_ROW);
            fail("a multi-row kernel differs from the portable kernel on long rows");
        }
    }
    G as u32
}

/// On FPU cores, `f32` pre-activations of adjacent rows run fused (`kernel::arm_fpu::accumulate_rows`):
/// each row must equal its own in-order sum `((bias + w₀x₀) + w₁x₁) + …`, bit for bit.
/// Returns the number of comparisons (none on other cores).
fn fused_rows_match<const G: usize>(w: &[f32], x: &[f32], len: usize) -> u32 {
    #[cfg(target_abi = "eabihf")]
    {
        use tinyrnn::{Schedule, F32};
        let (Some(w), Some(x)) = (w.get(..G * len.min(w.len() / G)), x.get(..len)) else {
            return 0;
        };
        let len = w.len() / G;
        let x = &x[..len];
        let bias: [f32; G] = core::array::from_fn(|g| 0.25 * g as f32 - 0.5);
        let rows: [&[f32]; G] = core::array::from_fn(|g| &w[g * len..(g + 1) * len]);
        let no_rows: [&[f32]; G] = [&[]; G];
        let got = F32::preact_rows::<G>(
            &bias,
            black_box(rows),
            &[(); G],
            x,
            no_rows,
            &[(); G],
            &[],
            &(),
        );
        for (g, &got) in got.iter().enumerate() {
            let row = &w[g * len..(g + 1) * len];
            let want = row.iter().zip(x).fold(bias[g], |acc, (w, x)| acc + w * x);
            if got.to_bits() != want.to_bits() {
                defmt::error!(
                    "fused f32 rows G={=usize} len={=usize} row {=usize}",
                    G,
                    len,
                    g
                );
                fail("fused f32 rows differ from their in-order sums");
            }
        }
        G as u32
    }
    #[cfg(not(target_abi = "eabihf"))]
    {
        let _ = (w, x, len);
        0
    }
}

#[entry]
fn main() -> ! {
    defmt::info!("tinyrnn-firmware selftest: start");

    let sum = sum_of_squares(black_box(100));
    if sum != 338_350 {
        fail("sum_of_squares(100) != 338350");
    }
    defmt::info!("sum_of_squares(100) = {=u32}", sum);

    let checks = kernels_match_portable();
    defmt::info!(
        "kernels match the portable ones: {=u32} comparisons",
        checks
    );

    let checks = long_rows_match();
    defmt::info!(
        "rows longer than one exact i32 block match: {=u32} comparisons",
        checks
    );

    let checks = topologies::match_the_host();
    defmt::info!(
        "bidirectional, projected LSTM, MLP heads, generation match the host: {=u32} values",
        checks
    );

    let peripherals = cortex_m::Peripherals::take().unwrap_or_else(|| fail("peripherals taken"));
    let mut counter = icount::InstructionCounter::new(peripherals.SYST);
    const N: u32 = 1000;
    match counter.ticks_per_n(N, dummy_loop) {
        Some(ticks) => icount::report("dummy_loop", N, ticks),
        None => fail("dummy_loop: 2N iterations took no longer than N"),
    }

    defmt::info!("tinyrnn-firmware selftest: pass");
    exit(EXIT_SUCCESS)
}
