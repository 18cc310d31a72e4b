//! Proof that the sequence topologies cannot panic on the device: this binary runs the golden
//! models of `core/tests/golden/topologies_q15.rs` — bidirectional windows (GRU stack, projected
//! LSTM), MLP and dense heads, the forecaster's scores and generation — on inputs the optimiser
//! cannot see, and its panic handler calls a function that does not exist. If any panic path
//! (bounds check, division by zero, unwrap, …) survives optimisation, the link fails with
//! `undefined symbol: tinyrnn_topology_can_panic`. It is built with every other binary (`cargo
//! build --release --bins`), so on every target of `cargo xtask test`.
//!
//! Like `nopanic`, it does not use the `tinyrnn_firmware` library (whose panic handler would be
//! linked) and no `defmt`: only the models, `cortex-m-rt` and a semihosting exit.
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use tinyrnn::topology::bidirectional::BiLayers;
use tinyrnn::{Bidirectional, ErrorMetric, Head, Q15};

#[allow(dead_code)]
mod golden {
    include!("../../../core/tests/golden/topologies_q15.rs");
}

/// Pushes opaque samples through a bidirectional model, reading every result after each run.
#[inline(never)]
fn bidirectional<L, Hd, const I: usize, const W: usize>(model: &Bidirectional<Q15, L, Hd, I, W>)
where
    L: BiLayers<Q15, W>,
    Hd: Head<Q15>,
{
    let Ok(mut state) = model.new_state(black_box(2)) else {
        return;
    };
    for _ in 0..black_box(2 * W as u32) {
        let x = black_box([0i16; I]);
        if model.push(&mut state, &x) {
            let mut out = black_box([0i32; 8]);
            model.head_final(&state, &mut out);
            model.head_step(&state, black_box(1), &mut out);
            black_box(out);
            black_box(model.output(&state, black_box(W - 1)));
            black_box(model.final_hidden(&state));
        }
    }
    model.reset(&mut state);
    black_box(model.run(&mut state));
    black_box(&state);
}

/// Warm-up scores and generation of the golden forecaster on opaque samples.
#[inline(never)]
fn forecast() {
    let model = &golden::FORECAST;
    let mut state = model.new_state();
    for _ in 0..black_box(3u32) {
        let x = black_box([0i16; 2]);
        black_box(model.observe(&mut state, &x, black_box(ErrorMetric::Squared)));
    }
    let steps = black_box(4);
    black_box(model.generate(&mut state, steps, |x| {
        black_box(x);
    }));
    black_box(model.is_anomaly(black_box(1), black_box(2)));
    black_box(&state);
}

#[entry]
fn main() -> ! {
    bidirectional(&golden::BI_GRU);
    bidirectional(&golden::BI_PROJ);
    forecast();
    semihosting::process::exit(0)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    extern "C" {
        /// Deliberately undefined: linking succeeds only if no panic path is left.
        fn tinyrnn_topology_can_panic() -> !;
    }
    // SAFETY: never linked; see above.
    unsafe { tinyrnn_topology_can_panic() }
}
