//! Host time per sample of `LSTM/GRU(I = 6, H) + Dense(H → 4)`, the shapes of issue 6's
//! RTNeural comparison. `cargo bench -p tinyrnn --bench step` (add
//! `RUSTFLAGS="-C target-cpu=native"` for the native row).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::hint::black_box;
use tinyrnn::{Dense, Gru, Lstm, Model, F32};

/// Deterministic pseudo-random weights in `[-scale, scale)`.
fn fill<const N: usize>(seed: &mut u64, scale: f32) -> [f32; N] {
    core::array::from_fn(|_| {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
    })
}

fn lstm<const H: usize>(seed: u64) -> Box<Model<F32, Lstm<F32, 6, H>, H, 4>> {
    let mut s = seed;
    let k = 1.0 / (H as f32).sqrt();
    Box::new(Model::new(
        Lstm::new(
            core::array::from_fn(|_| core::array::from_fn(|_| fill(&mut s, k))),
            core::array::from_fn(|_| core::array::from_fn(|_| fill(&mut s, k))),
            core::array::from_fn(|_| fill(&mut s, k)),
        ),
        Dense::new(core::array::from_fn(|_| fill(&mut s, k)), fill(&mut s, k)),
    ))
}

fn gru<const H: usize>(seed: u64) -> Box<Model<F32, Gru<F32, 6, H>, H, 4>> {
    let mut s = seed;
    let k = 1.0 / (H as f32).sqrt();
    Box::new(Model::new(
        Gru::new(
            core::array::from_fn(|_| core::array::from_fn(|_| fill(&mut s, k))),
            core::array::from_fn(|_| core::array::from_fn(|_| fill(&mut s, k))),
            core::array::from_fn(|_| fill(&mut s, k)),
            fill(&mut s, k),
        ),
        Dense::new(core::array::from_fn(|_| fill(&mut s, k)), fill(&mut s, k)),
    ))
}

/// 256 input samples, cycled, so the state keeps moving.
fn inputs() -> Vec<[f32; 6]> {
    let mut s = 7;
    (0..256).map(|_| fill::<6>(&mut s, 1.5)).collect()
}

macro_rules! bench_sizes {
    ($c:expr, $group:expr, $make:ident, $($h:literal),*) => {{
        let xs = inputs();
        let mut group = $c.benchmark_group($group);
        $(
            let model = $make::<$h>(1);
            let mut state = model.new_state();
            let mut t = 0usize;
            group.bench_function(BenchmarkId::from_parameter($h), |b| {
                b.iter(|| {
                    t = (t + 1) & 255;
                    black_box(model.step(&mut state, black_box(&xs[t])))
                })
            });
        )*
        group.finish();
    }};
}

fn steps(c: &mut Criterion) {
    bench_sizes!(c, "lstm_f32_ns_per_sample", lstm, 16, 32, 64);
    bench_sizes!(c, "gru_f32_ns_per_sample", gru, 16, 32, 64);
}

criterion_group!(benches, steps);
criterion_main!(benches);
