//! LSTM layer: forward with a per-step cache, and its backward pass through time.
//!
//! Forward (PyTorch `nn.LSTM`, gate blocks i, f, g, o in that row order), for each step `t`:
//!
//! ```text
//! [ĩ f̃ g̃ õ] = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
//! i = σ(ĩ)   f = σ(f̃)   g = tanh(g̃)   o = σ(õ)
//! c_t = f ⊙ c_{t-1} + i ⊙ g
//! h_t = o ⊙ tanh(c_t)
//! ```
//!
//! Backward, with `δh_t` arriving at `h_t` and `δc_t` carried from step `t+1`:
//!
//! ```text
//! δc  = δc_t + δh_t ⊙ o ⊙ (1 - tanh²c_t)
//! δõ  = δh_t ⊙ tanh c_t ⊙ o(1-o)
//! δĩ  = δc ⊙ g ⊙ i(1-i)     δf̃ = δc ⊙ c_{t-1} ⊙ f(1-f)     δg̃ = δc ⊙ i ⊙ (1-g²)
//! δc_{t-1} = δc ⊙ f
//! ∂W_ih += δ[ĩ f̃ g̃ õ] x_tᵀ, ∂W_hh += δ[…] h_{t-1}ᵀ, both biases += δ[…]
//! δx_t = W_ihᵀ δ[…],  δh_{t-1} = W_hhᵀ δ[…]     (δh, δc dropped where truncated BPTT cuts)
//! ```
//!
//! The state is `[h; c]` (`2 × hidden` values).

use super::linalg::{add_assign, matvec_add, matvec_t_add, outer_add, sigmoid};
use super::{LayerParams, Real};

/// What the backward pass needs: hidden and cell states, activated gates, `tanh c_t`.
#[derive(Clone, Debug)]
pub(crate) struct Cache<T> {
    /// `h_t`, `steps × hidden`.
    pub(crate) h: Vec<T>,
    /// `c_t`, `steps × hidden`.
    pub(crate) c: Vec<T>,
    /// `tanh c_t`, `steps × hidden`.
    tanh_c: Vec<T>,
    /// Activated gates `[i f g o]`, `steps × 4·hidden`.
    gates: Vec<T>,
}

/// Runs the layer over `steps` inputs from the state `s0 = [h0; c0]`.
pub(crate) fn forward<T: Real>(p: &LayerParams<T>, xs: &[T], steps: usize, s0: &[T]) -> Cache<T> {
    let (n_in, n_h) = (p.input, p.hidden);
    let (h0, c0) = s0.split_at(n_h);
    let mut cache = Cache {
        h: vec![T::zero(); steps * n_h],
        c: vec![T::zero(); steps * n_h],
        tanh_c: vec![T::zero(); steps * n_h],
        gates: vec![T::zero(); steps * 4 * n_h],
    };
    for t in 0..steps {
        let a = &mut cache.gates[t * 4 * n_h..(t + 1) * 4 * n_h];
        a.copy_from_slice(&p.b_ih);
        add_assign(a, &p.b_hh);
        matvec_add(&p.w_ih, n_in, &xs[t * n_in..(t + 1) * n_in], a);
        let h_prev = if t == 0 {
            h0
        } else {
            &cache.h[(t - 1) * n_h..t * n_h]
        };
        matvec_add(&p.w_hh, n_h, h_prev, a);
        let (ai, rest) = a.split_at_mut(n_h);
        let (af, rest) = rest.split_at_mut(n_h);
        let (ag, ao) = rest.split_at_mut(n_h);
        for k in 0..n_h {
            ai[k] = sigmoid(ai[k]);
            af[k] = sigmoid(af[k]);
            ag[k] = ag[k].tanh();
            ao[k] = sigmoid(ao[k]);
            let c_prev = if t == 0 {
                c0[k]
            } else {
                cache.c[(t - 1) * n_h + k]
            };
            let c = af[k] * c_prev + ai[k] * ag[k];
            let tc = c.tanh();
            cache.c[t * n_h + k] = c;
            cache.tanh_c[t * n_h + k] = tc;
            cache.h[t * n_h + k] = ao[k] * tc;
        }
    }
    cache
}

/// Backward pass through time; see [`super::rnn::backward`] for the arguments.
#[allow(clippy::too_many_arguments)] // the cell's whole context, kept flat like its forward
pub(crate) fn backward<T: Real>(
    p: &LayerParams<T>,
    xs: &[T],
    steps: usize,
    s0: &[T],
    cache: &Cache<T>,
    dh: &[T],
    cut: &dyn Fn(usize) -> bool,
    g: &mut LayerParams<T>,
    mut dx: Option<&mut [T]>,
) {
    let (n_in, n_h) = (p.input, p.hidden);
    let (h0, c0) = s0.split_at(n_h);
    let mut carry_h = vec![T::zero(); n_h];
    let mut carry_c = vec![T::zero(); n_h];
    let mut da = vec![T::zero(); 4 * n_h];
    let one = T::one();
    for t in (0..steps).rev() {
        let gates = &cache.gates[t * 4 * n_h..(t + 1) * 4 * n_h];
        let h_prev = if t == 0 {
            h0
        } else {
            &cache.h[(t - 1) * n_h..t * n_h]
        };
        let c_prev = if t == 0 {
            c0
        } else {
            &cache.c[(t - 1) * n_h..t * n_h]
        };
        let x_t = &xs[t * n_in..(t + 1) * n_in];
        for k in 0..n_h {
            let (i, f, gg, o) = (
                gates[k],
                gates[n_h + k],
                gates[2 * n_h + k],
                gates[3 * n_h + k],
            );
            let tc = cache.tanh_c[t * n_h + k];
            let d_h = dh[t * n_h + k] + carry_h[k];
            let d_c = carry_c[k] + d_h * o * (one - tc * tc);
            da[k] = d_c * gg * i * (one - i);
            da[n_h + k] = d_c * c_prev[k] * f * (one - f);
            da[2 * n_h + k] = d_c * i * (one - gg * gg);
            da[3 * n_h + k] = d_h * tc * o * (one - o);
            carry_c[k] = d_c * f;
        }
        add_assign(&mut g.b_ih, &da);
        add_assign(&mut g.b_hh, &da);
        outer_add(&mut g.w_ih, &da, x_t);
        outer_add(&mut g.w_hh, &da, h_prev);
        if let Some(dx) = dx.as_deref_mut() {
            let row = &mut dx[t * n_in..(t + 1) * n_in];
            row.fill(T::zero());
            matvec_t_add(&p.w_ih, n_in, &da, row);
        }
        carry_h.fill(T::zero());
        if t > 0 && cut(t) {
            carry_c.fill(T::zero());
        } else if t > 0 {
            matvec_t_add(&p.w_hh, n_h, &da, &mut carry_h);
        }
    }
}
