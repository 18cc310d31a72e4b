//! Elman RNN layer: forward with a per-step cache, and its backward pass through time.
//!
//! Forward (PyTorch `nn.RNN`), for each step `t`:
//!
//! ```text
//! a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
//! h_t = f(a_t)                      f = tanh or relu
//! ```
//!
//! Backward, with `δh_t` = gradient arriving at `h_t` (from the loss / the layer above at step
//! `t` plus the recurrence from step `t+1`):
//!
//! ```text
//! δa_t      = δh_t ⊙ f'(a_t)        tanh: 1 - h_t²;  relu: [h_t > 0]
//! ∂W_ih    += δa_t x_tᵀ,  ∂b_ih += δa_t,  ∂W_hh += δa_t h_{t-1}ᵀ,  ∂b_hh += δa_t
//! δx_t      = W_ihᵀ δa_t            (to the layer below)
//! δh_{t-1} += W_hhᵀ δa_t            (dropped where truncated BPTT cuts the graph)
//! ```

use super::linalg::{add_assign, matvec_add, matvec_t_add, outer_add};
use super::{LayerParams, Real};
use crate::model_file::Nonlinearity;

/// What the backward pass needs from the forward pass: the hidden states.
#[derive(Clone, Debug)]
pub(crate) struct Cache<T> {
    /// `h_t` for every step, `steps × hidden`.
    pub(crate) h: Vec<T>,
}

/// Runs the layer over `steps` inputs (`xs` is `steps × input`) from the state `h0`.
pub(crate) fn forward<T: Real>(
    p: &LayerParams<T>,
    f: Nonlinearity,
    xs: &[T],
    steps: usize,
    h0: &[T],
) -> Cache<T> {
    let (n_in, n_h) = (p.input, p.hidden);
    let mut h = vec![T::zero(); steps * n_h];
    let mut a = vec![T::zero(); n_h];
    for t in 0..steps {
        a.copy_from_slice(&p.b_ih);
        add_assign(&mut a, &p.b_hh);
        matvec_add(&p.w_ih, n_in, &xs[t * n_in..(t + 1) * n_in], &mut a);
        let (done, rest) = h.split_at_mut(t * n_h);
        let prev = if t == 0 { h0 } else { &done[(t - 1) * n_h..] };
        matvec_add(&p.w_hh, n_h, prev, &mut a);
        for (o, v) in rest[..n_h].iter_mut().zip(&a) {
            *o = match f {
                Nonlinearity::Tanh => v.tanh(),
                Nonlinearity::Relu => v.max(T::zero()),
            };
        }
    }
    Cache { h }
}

/// Backward pass through time. `dh` (`steps × hidden`) is the gradient arriving at each `h_t`
/// from outside the recurrence; `cut(t)` says the state entering step `t` is detached (no
/// gradient flows from step `t` into step `t-1`). Accumulates parameter gradients into `g` and,
/// if `dx` is given, writes the gradient with respect to the inputs (`steps × input`) into it.
#[allow(clippy::too_many_arguments)] // the cell's whole context, kept flat like its forward
pub(crate) fn backward<T: Real>(
    p: &LayerParams<T>,
    f: Nonlinearity,
    xs: &[T],
    steps: usize,
    h0: &[T],
    cache: &Cache<T>,
    dh: &[T],
    cut: &dyn Fn(usize) -> bool,
    g: &mut LayerParams<T>,
    mut dx: Option<&mut [T]>,
) {
    let (n_in, n_h) = (p.input, p.hidden);
    let mut carry = vec![T::zero(); n_h];
    let mut da = vec![T::zero(); n_h];
    for t in (0..steps).rev() {
        let h_t = &cache.h[t * n_h..(t + 1) * n_h];
        let prev = if t == 0 {
            h0
        } else {
            &cache.h[(t - 1) * n_h..t * n_h]
        };
        let x_t = &xs[t * n_in..(t + 1) * n_in];
        for k in 0..n_h {
            let d = dh[t * n_h + k] + carry[k];
            da[k] = match f {
                Nonlinearity::Tanh => d * (T::one() - h_t[k] * h_t[k]),
                Nonlinearity::Relu => {
                    if h_t[k] > T::zero() {
                        d
                    } else {
                        T::zero()
                    }
                }
            };
        }
        add_assign(&mut g.b_ih, &da);
        add_assign(&mut g.b_hh, &da);
        outer_add(&mut g.w_ih, &da, x_t);
        outer_add(&mut g.w_hh, &da, prev);
        if let Some(dx) = dx.as_deref_mut() {
            let row = &mut dx[t * n_in..(t + 1) * n_in];
            row.fill(T::zero());
            matvec_t_add(&p.w_ih, n_in, &da, row);
        }
        carry.fill(T::zero());
        if t > 0 && !cut(t) {
            matvec_t_add(&p.w_hh, n_h, &da, &mut carry);
        }
    }
}
