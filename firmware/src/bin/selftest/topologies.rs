//! The sequence topologies on the device: the q15 models of `core/tests/golden/topologies_q15.rs`
//! (a two-layer bidirectional GRU with an MLP head, a bidirectional projected LSTM with a head
//! on every step, a forecaster with an MLP head), fed the file's inputs, must produce the
//! file's outputs — which the host computed (`core/tests/topology_golden.rs`) — bit for bit.

use tinyrnn::topology::bidirectional::BiLayers;
use tinyrnn::{Bidirectional, ErrorMetric, Head, Q15};
use tinyrnn_firmware::fail;

#[allow(dead_code)]
mod golden {
    include!("../../../../core/tests/golden/topologies_q15.rs");
}

/// Every run of `model` over `input` against `expected`: the run's position, the head's outputs
/// (on `[f_{W-1} ; b_0]`, or on each step in turn when `per_step`), and every output of the
/// window. Returns the number of values compared.
fn bidirectional_matches<L, Hd, const I: usize, const W: usize, const O: usize, const B: usize>(
    name: &str,
    model: &Bidirectional<Q15, L, Hd, I, W>,
    stride: u32,
    input: &[[i16; I]],
    per_step: bool,
    expected: &[golden::GoldenRun<O, W, B>],
) -> u32
where
    L: BiLayers<Q15, W>,
    Hd: Head<Q15>,
{
    let mut state = model
        .new_state(stride)
        .unwrap_or_else(|_| fail("golden stride outside the window"));
    let mut expected = expected.iter();
    let mut checks = 0;
    for (t, x) in input.iter().enumerate() {
        if !model.push(&mut state, core::hint::black_box(x)) {
            continue;
        }
        let Some(want) = expected.next() else {
            defmt::error!(
                "{=str}: a run after sample {=usize} beyond the golden ones",
                name,
                t
            );
            fail("a bidirectional model ran more often than on the host");
        };
        if want.after != t {
            defmt::error!(
                "{=str}: ran after sample {=usize}, the host after {=usize}",
                name,
                t,
                want.after
            );
            fail("a bidirectional model ran after another sample than on the host");
        }
        let mut head = [0i32; O];
        if per_step {
            for (s, out) in head.chunks_exact_mut(Hd::OUTPUT.max(1)).enumerate() {
                model.head_step(&state, s, out);
            }
        } else {
            model.head_final(&state, &mut head);
        }
        if head != want.head {
            defmt::error!(
                "{=str}: run after sample {=usize}: head {=[?]} != host {=[?]}",
                name,
                t,
                &head[..],
                &want.head[..]
            );
            fail("a bidirectional head differs from the host");
        }
        for (s, want) in want.outputs.iter().enumerate() {
            let got = model.output(&state, s);
            if got != &want[..] {
                defmt::error!(
                    "{=str}: run after sample {=usize}, step {=usize}: {=[?]} != host {=[?]}",
                    name,
                    t,
                    s,
                    got,
                    &want[..]
                );
                fail("a bidirectional output differs from the host");
            }
        }
        checks += (O + W * B) as u32;
    }
    if expected.next().is_some() {
        defmt::error!("{=str}: fewer runs than on the host", name);
        fail("a bidirectional model ran less often than on the host");
    }
    checks
}

/// The forecaster's warm-up scores and generated samples against the host's.
fn forecast_matches() -> u32 {
    let model = &golden::FORECAST;
    let mut state = model.new_state();
    let mut scores = golden::FORECAST_SCORES.iter();
    let mut checks = 0;
    for (t, x) in golden::FORECAST_WARM_UP.iter().enumerate() {
        let score = model.observe(&mut state, core::hint::black_box(x), ErrorMetric::Squared);
        match (score, t) {
            (None, 0) => {}
            (Some(got), _) if scores.next() == Some(&got) => checks += 1,
            (got, _) => {
                defmt::error!("forecast: warm-up sample {=usize}: score {=?}", t, got);
                fail("a prediction error differs from the host");
            }
        }
    }
    let mut want = golden::FORECAST_GENERATED.iter();
    let generated = model.generate(&mut state, golden::FORECAST_GENERATED.len(), |x| {
        if want.next() != Some(x) {
            defmt::error!("forecast: generated {=[?]} differs from the host", &x[..]);
            fail("a generated sample differs from the host");
        }
        checks += 2;
    });
    if generated != golden::FORECAST_GENERATED.len() {
        fail("the forecaster generated fewer samples than on the host");
    }
    checks
}

/// Runs the three golden cases; returns the number of values compared.
pub fn match_the_host() -> u32 {
    bidirectional_matches(
        "bidirectional gru + mlp",
        &golden::BI_GRU,
        golden::BI_GRU_STRIDE,
        &golden::BI_GRU_INPUT,
        false,
        &golden::BI_GRU_RUNS,
    ) + bidirectional_matches(
        "bidirectional projected lstm",
        &golden::BI_PROJ,
        golden::BI_PROJ_STRIDE,
        &golden::BI_PROJ_INPUT,
        true,
        &golden::BI_PROJ_RUNS,
    ) + forecast_matches()
}
