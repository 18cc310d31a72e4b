//! `f32` arithmetic: [`F32`] with accurate activations, [`F32Fast`] with `micromath`-based ones.

use core::marker::PhantomData;

use super::Numeric;
use crate::activation::float::{Accurate, Fast, FloatActivation};
use crate::kernel::dot_f32;
#[cfg(not(target_os = "none"))]
use crate::kernel::host::dot_f32_rows;
use crate::kernel::portable::mul_add;

/// `f32` weights, activations and state, with activations chosen by `A`.
///
/// Use the aliases [`F32`] (accurate, the default) or [`F32Fast`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Float<A>(PhantomData<A>);

/// `f32` everywhere; sigmoid and tanh within 1e-6 of the exact values
/// (see [`activation::float`](crate::activation::float)).
pub type F32 = Float<Accurate>;

/// `f32` everywhere; sigmoid and tanh from `micromath`'s `exp`, cheaper on FPU-less cores, with
/// the error stated in [`activation::float`](crate::activation::float).
pub type F32Fast = Float<Fast>;

impl<A: FloatActivation> Numeric for Float<A> {
    type Act = f32;
    type Weight = f32;
    type Bias = f32;
    type Pre = f32;
    type Cell = f32;
    type RowScale = ();
    type Format = ();
    const FUSES_ROWS: bool = cfg!(any(tinyrnn_asm_fpu, not(target_os = "none")));

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
        // then sums from its bias through x and h in order (see `kernel::arm::accumulate_rows`).
        #[cfg(tinyrnn_asm_fpu)]
        {
            let mut acc = *bias;
            if crate::kernel::arm::accumulate_rows(&mut acc, w_x, x)
                && crate::kernel::arm::accumulate_rows(&mut acc, w_h, h)
            {
                return acc;
            }
        }
        // On the host the rows share their loads too, with the very sums of `preact`.
        #[cfg(not(target_os = "none"))]
        {
            let _ = (scale_x, scale_h, format);
            let (from_x, from_h) = (dot_f32_rows(w_x, x), dot_f32_rows(w_h, h));
            let mut out = *bias;
            for ((out, from_x), from_h) in out.iter_mut().zip(from_x).zip(from_h) {
                *out = *out + from_x + from_h;
            }
            out
        }
        #[cfg(target_os = "none")]
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
            if crate::kernel::arm::accumulate_rows(&mut from_x, w_x, x) {
                let mut from_h = [from_x[0], from_x[1], b_hn];
                if crate::kernel::arm::accumulate_rows(&mut from_h, w_h, h) {
                    return [from_h[0], from_h[1], from_x[2], from_h[2]];
                }
            }
        }
        // On the host the rows share their loads too, with the very sums of `preact` (an
        // absent part adds an empty dot product, +0.0, as there).
        #[cfg(not(target_os = "none"))]
        {
            let _ = (scale_x, scale_h, format);
            let [b_r, b_z, b_in, b_hn] = *bias;
            let (from_x, from_h) = (dot_f32_rows(w_x, x), dot_f32_rows(w_h, h));
            [
                b_r + from_x[0] + from_h[0],
                b_z + from_x[1] + from_h[1],
                b_in + from_x[2] + 0.0,
                b_hn + 0.0 + from_h[2],
            ]
        }
        #[cfg(target_os = "none")]
        super::gru_preacts_one_by_one::<Self>(bias, w_x, scale_x, x, w_h, scale_h, h, format)
    }

    // On the host, eight units: one AVX vector per gate, or two SSE/NEON vectors (measured
    // about 10% faster than four units on SSE: more independent chains in flight).
    const UNITS_PER_UPDATE: usize = if cfg!(target_os = "none") { 1 } else { 8 };

    #[inline(always)]
    fn lstm_units<const U: usize>(pre: [[f32; 4]; U], c: &mut [f32; U], _: &()) -> [f32; U] {
        A::lstm_units(pre, c)
    }

    #[inline(always)]
    fn gru_units<const U: usize>(pre: [[f32; 4]; U], h_prev: [f32; U], _: &()) -> [f32; U] {
        A::gru_units(pre, h_prev)
    }

    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    fn lstm_eight_units(
        bias: &[[f32; 4]; 8],
        w_x: &[f32],
        x: &[f32],
        w_h: &[f32],
        h: &[f32],
        c: &mut [f32; 8],
    ) -> Option<[f32; 8]> {
        use crate::kernel::host;
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
        Some(A::lstm_units(host::units_of_eight(pre), c))
    }

    #[cfg(not(target_os = "none"))]
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
        use crate::kernel::host;
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
        Some(A::gru_units(host::units_of_eight(sums), *h_old))
    }

    #[inline(always)]
    fn lstm_gates(pre: [f32; 4], _: &()) -> [f32; 4] {
        A::lstm_gates(pre)
    }

    #[inline(always)]
    fn sigmoid(pre: f32, _: &()) -> f32 {
        A::sigmoid(pre)
    }

    #[inline(always)]
    fn tanh(pre: f32, _: &()) -> f32 {
        A::tanh(pre)
    }

    #[inline(always)]
    fn relu(pre: f32, _: &()) -> f32 {
        // `max` keeps NaN out: a NaN pre-activation cannot arise from finite weights and inputs.
        pre.max(0.0)
    }

    #[inline(always)]
    fn gru_candidate(x_part: f32, reset: f32, h_part: f32, _: &()) -> f32 {
        mul_add(reset, h_part, x_part)
    }

    #[inline(always)]
    fn gru_hidden(update: f32, candidate: f32, h_prev: f32, _: &()) -> f32 {
        // PyTorch computes (1 - z) * n + z * h; this is the same expression.
        mul_add(1.0 - update, candidate, update * h_prev)
    }

    #[inline(always)]
    fn lstm_cell(forget: f32, c: f32, input: f32, candidate: f32, _: &()) -> f32 {
        mul_add(forget, c, input * candidate)
    }

    #[inline(always)]
    fn lstm_hidden(output: f32, c: f32, _: &()) -> f32 {
        output * A::tanh(c)
    }
}
