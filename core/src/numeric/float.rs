//! `f32` arithmetic: [`F32`] with accurate activations, [`F32Fast`] with `micromath`-based ones.
//!
//! The element-wise maths (activations, LSTM and GRU updates) is written once, over
//! [`F32Lanes`]: [`Float<A>`](Float) runs it on one `f32`, and on the host the cells run the
//! very same code on eight units at once, one unit per lane of an 8-lane vector
//! (`Float<A, wide::f32x8>`), so both give the same bits.

use core::fmt::Debug;
use core::marker::PhantomData;

use super::{Elementwise, Numeric, Schedule};
use crate::activation::float::{Accurate, Fast, FloatActivation};
use crate::kernel::dot_f32;
use crate::kernel::portable::F32Lanes;

/// `f32` weights, activations and state, with activations chosen by `A`, computed in the lanes
/// `T`: `f32` (the numeric type the cells use), or inside this crate one unit per lane of a
/// host vector.
///
/// Use the aliases [`F32`] (accurate, the default) or [`F32Fast`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Float<A, T = f32>(PhantomData<(A, T)>);

/// `f32` everywhere; sigmoid and tanh within 1e-6 of the exact values
/// (see [`activation::float`](crate::activation::float)).
pub type F32 = Float<Accurate>;

/// `f32` everywhere; sigmoid and tanh from `micromath`'s `exp`, cheaper on FPU-less cores, with
/// the error stated in [`activation::float`](crate::activation::float).
pub type F32Fast = Float<Fast>;

impl<A, T> Elementwise for Float<A, T>
where
    A: FloatActivation,
    T: F32Lanes + Default + PartialEq + Debug + 'static,
{
    type Act = T;
    type Pre = T;
    type Cell = T;
    type Format = ();

    #[inline(always)]
    fn sigmoid(pre: T, _: &()) -> T {
        A::sigmoid(pre)
    }

    #[inline(always)]
    fn tanh(pre: T, _: &()) -> T {
        A::tanh(pre)
    }

    #[inline(always)]
    fn relu(pre: T, _: &()) -> T {
        // `max` keeps NaN out: a NaN pre-activation cannot arise from finite weights and inputs.
        pre.map(|v| v.max(0.0))
    }

    #[inline(always)]
    fn gru_candidate(x_part: T, reset: T, h_part: T, _: &()) -> T {
        reset.mul_add(h_part, x_part)
    }

    #[inline(always)]
    fn gru_hidden(update: T, candidate: T, h_prev: T, _: &()) -> T {
        // PyTorch computes (1 - z) * n + z * h; this is the same expression.
        (T::splat(1.0) - update).mul_add(candidate, update * h_prev)
    }

    #[inline(always)]
    fn lstm_cell(forget: T, c: T, input: T, candidate: T, _: &()) -> T {
        forget.mul_add(c, input * candidate)
    }

    #[inline(always)]
    fn lstm_hidden(output: T, c: T, _: &()) -> T {
        output * A::tanh(c)
    }
}

impl<A: FloatActivation> Numeric for Float<A> {
    type Weight = f32;
    type Bias = f32;
    type RowScale = ();

    #[inline(always)]
    fn preact(
        bias: f32,
        w_x: &[f32],
        _: (),
        x: &[f32],
        w_h: &[f32],
        _: (),
        h: &[f32],
        _: &(),
    ) -> f32 {
        bias + dot_f32(w_x, x) + dot_f32(w_h, h)
    }
}

/// On Cortex-M cores with an FPU the gate rows of a unit run in one pass; on the host they
/// share their loads too, and the cells update eight units at a time in 8-lane vectors.
impl<A: FloatActivation> Schedule for Float<A> {
    const FUSES_ROWS: bool = cfg!(any(tinyrnn_asm_fpu, tinyrnn_host_simd));

    #[inline(always)]
    fn preact_rows<const G: usize>(
        bias: &[f32; G],
        w_x: [&[f32]; G],
        scale_x: &[(); G],
        x: &[f32],
        w_h: [&[f32]; G],
        scale_h: &[(); G],
        h: &[f32],
        format: &(),
    ) -> [f32; G] {
        // On FPU cores the G rows run in one pass that shares every load of x and h; each row
        // then sums from its bias through x and h in order (see `kernel::arm_fpu`).
        #[cfg(tinyrnn_asm_fpu)]
        {
            let mut acc = *bias;
            if crate::kernel::arm_fpu::accumulate_rows(&mut acc, w_x, x)
                && crate::kernel::arm_fpu::accumulate_rows(&mut acc, w_h, h)
            {
                return acc;
            }
        }
        // On the host the rows share their loads too, with the very sums of `preact`.
        #[cfg(tinyrnn_host_simd)]
        {
            let _ = (scale_x, scale_h, format);
            let (from_x, from_h) = (host::dot_f32_rows(w_x, x), host::dot_f32_rows(w_h, h));
            core::array::from_fn(|g| bias[g] + from_x[g] + from_h[g])
        }
        #[cfg(not(tinyrnn_host_simd))]
        super::preact_rows_one_by_one::<Self, G>(bias, w_x, scale_x, x, w_h, scale_h, h, format)
    }

    #[inline(always)]
    fn gru_preacts(
        bias: &[f32; 4],
        w_x: [&[f32]; 3],
        scale_x: &[(); 3],
        x: &[f32],
        w_h: [&[f32]; 3],
        scale_h: &[(); 3],
        h: &[f32],
        format: &(),
    ) -> [f32; 4] {
        // On FPU cores: rows r, z, n of W_ih in one pass from [b_r, b_z, b_in], then rows r, z,
        // n of W_hh from [r, z, b_hn].
        #[cfg(tinyrnn_asm_fpu)]
        {
            let [b_r, b_z, b_in, b_hn] = *bias;
            let mut from_x = [b_r, b_z, b_in];
            if crate::kernel::arm_fpu::accumulate_rows(&mut from_x, w_x, x) {
                let mut from_h = [from_x[0], from_x[1], b_hn];
                if crate::kernel::arm_fpu::accumulate_rows(&mut from_h, w_h, h) {
                    return [from_h[0], from_h[1], from_x[2], from_h[2]];
                }
            }
        }
        // On the host the rows share their loads too, with the very sums of `preact` (an
        // absent part adds an empty dot product, +0.0, as there).
        #[cfg(tinyrnn_host_simd)]
        {
            let _ = (scale_x, scale_h, format);
            let [b_r, b_z, b_in, b_hn] = *bias;
            let (from_x, from_h) = (host::dot_f32_rows(w_x, x), host::dot_f32_rows(w_h, h));
            [
                b_r + from_x[0] + from_h[0],
                b_z + from_x[1] + from_h[1],
                b_in + from_x[2] + 0.0,
                b_hn + 0.0 + from_h[2],
            ]
        }
        #[cfg(not(tinyrnn_host_simd))]
        super::gru_preacts_one_by_one::<Self>(bias, w_x, scale_x, x, w_h, scale_h, h, format)
    }

    // Eight units: one AVX vector per gate, or two SSE/NEON vectors; more independent chains in
    // flight than four units give.
    const BLOCKS_OF_EIGHT: bool = cfg!(tinyrnn_host_simd);

    #[cfg(tinyrnn_host_simd)]
    #[inline(always)]
    fn lstm_update_eight(pre: [[f32; 4]; 8], c: &mut [f32; 8], _: &()) -> [f32; 8] {
        host::lstm_update_eight::<A>(host::gates_of_eight(&pre), c)
    }

    #[cfg(tinyrnn_host_simd)]
    #[inline(always)]
    fn gru_update_eight(pre: [[f32; 4]; 8], h_prev: &[f32; 8], _: &()) -> [f32; 8] {
        host::gru_update_eight::<A>(host::gates_of_eight(&pre), h_prev)
    }

    #[cfg(tinyrnn_host_simd)]
    #[inline(always)]
    fn lstm_eight_units(
        bias: &[[f32; 4]; 8],
        w_x: &[f32],
        x: &[f32],
        w_h: &[f32],
        h: &[f32],
        c: &mut [f32; 8],
    ) -> Option<[f32; 8]> {
        let from_x = host::dot_f32_eight_units::<4>(w_x, x)?;
        let from_h = host::dot_f32_eight_units::<4>(w_h, h)?;
        let [bi, bf, bg, bo] = host::gates_of_eight(bias);
        // `(bias + x part) + h part` in every lane, as `preact` adds them.
        let pre = [
            bi + from_x[0] + from_h[0],
            bf + from_x[1] + from_h[1],
            bg + from_x[2] + from_h[2],
            bo + from_x[3] + from_h[3],
        ];
        Some(host::lstm_update_eight::<A>(pre, c))
    }

    #[cfg(tinyrnn_host_simd)]
    #[inline(always)]
    fn gru_eight_units(
        bias: &[[f32; 3]; 8],
        bias_hn: &[f32; 8],
        w_x: &[f32],
        x: &[f32],
        w_h: &[f32],
        h: &[f32],
        h_old: &[f32; 8],
    ) -> Option<[f32; 8]> {
        let from_x = host::dot_f32_eight_units::<3>(w_x, x)?;
        let from_h = host::dot_f32_eight_units::<3>(w_h, h)?;
        let biases = core::array::from_fn(|u| [bias[u][0], bias[u][1], bias[u][2], bias_hn[u]]);
        let [b_r, b_z, b_in, b_hn] = host::gates_of_eight(&biases);
        let zero = wide::f32x8::ZERO;
        // The sums of `gru_preacts`: an absent part adds an empty dot product, +0.0.
        let sums = [
            b_r + from_x[0] + from_h[0],
            b_z + from_x[1] + from_h[1],
            b_in + from_x[2] + zero,
            b_hn + zero + from_h[2],
        ];
        Some(host::gru_update_eight::<A>(sums, h_old))
    }
}

/// The host's eight units per update: the kernels of `kernel::host` and the element-wise maths
/// above in 8-lane vectors, lane `u` = unit `u`.
#[cfg(tinyrnn_host_simd)]
mod host {
    use wide::f32x8;

    use super::{Elementwise, Float, FloatActivation};
    pub(super) use crate::kernel::host::{dot_f32_eight_units, dot_f32_rows, gates_of_eight};

    /// [`Elementwise::lstm_update`] of eight units from their gate vectors `[i, f, g, o]`;
    /// returns `h'`, leaves `c'` in `c`.
    #[inline(always)]
    pub(super) fn lstm_update_eight<A: FloatActivation>(
        pre: [f32x8; 4],
        c: &mut [f32; 8],
    ) -> [f32; 8] {
        let mut c_lanes = f32x8::from(*c);
        let h = Float::<A, f32x8>::lstm_update(pre, &mut c_lanes, &());
        *c = c_lanes.to_array();
        h.to_array()
    }

    /// [`Elementwise::gru_update`] of eight units from their vectors `[r, z, n_x, n_h]`.
    #[inline(always)]
    pub(super) fn gru_update_eight<A: FloatActivation>(
        pre: [f32x8; 4],
        h_prev: &[f32; 8],
    ) -> [f32; 8] {
        Float::<A, f32x8>::gru_update(pre, f32x8::from(*h_prev), &()).to_array()
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::activation::float::{Accurate, Fast};

        /// Every clamp boundary, NaN, infinities and a spread of magnitudes in every gate of
        /// eight units: each lane of the vector update has the bits of the one-unit update.
        fn lanes_match_one_unit<A: FloatActivation>() {
            let special = [
                f32::NAN,
                f32::INFINITY,
                -f32::INFINITY,
                18.0,
                -18.0,
                9.0,
                -9.0,
            ];
            let pool: Vec<f32> = (0..300u32)
                .map(|k| {
                    ((k.wrapping_mul(2654435761) >> 3) as i32 as f32)
                        * 2f32.powi(k as i32 % 17 - 32)
                })
                .chain(special)
                .collect();
            let same = |a: f32, b: f32| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
            for start in 0..pool.len() {
                let at = |k: usize| pool[(start + k * 7) % pool.len()];
                let pre: [[f32; 4]; 8] =
                    core::array::from_fn(|u| core::array::from_fn(|g| at(4 * u + g)));
                let gates = core::array::from_fn(|g| f32x8::from(pre.map(|unit| unit[g])));
                let h_old: [f32; 8] = core::array::from_fn(|u| at(100 + u));
                let mut c = h_old;
                let (h_lstm, h_gru) = (
                    lstm_update_eight::<A>(gates, &mut c),
                    gru_update_eight::<A>(gates, &h_old),
                );
                for u in 0..8 {
                    let mut c_ref = h_old[u];
                    let h_ref = Float::<A>::lstm_update(pre[u], &mut c_ref, &());
                    assert!(
                        same(h_lstm[u], h_ref) && same(c[u], c_ref),
                        "LSTM {:?}, {}",
                        pre[u],
                        h_old[u]
                    );
                    let h_ref = Float::<A>::gru_update(pre[u], h_old[u], &());
                    assert!(same(h_gru[u], h_ref), "GRU {:?}, {}", pre[u], h_old[u]);
                }
            }
        }

        #[test]
        fn eight_lanes_equal_the_one_unit_update() {
            lanes_match_one_unit::<Accurate>();
            lanes_match_one_unit::<Fast>();
        }
    }
}
