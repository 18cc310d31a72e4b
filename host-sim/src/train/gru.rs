//! GRU layer: forward with a per-step cache, and its backward pass through time.
//!
//! Forward (PyTorch `nn.GRU`, gate blocks r, z, n; "reset after"), for each step `t`:
//!
//! ```text
//! [a_r a_z a_n] = W_ih x_t + b_ih          [b_r b_z b_n] = W_hh h_{t-1} + b_hh
//! r = σ(a_r + b_r)    z = σ(a_z + b_z)    n = tanh(a_n + r ⊙ b_n)
//! h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}
//! ```
//!
//! Backward, with `δh_t` arriving at `h_t` (outside gradient plus recurrence):
//!
//! ```text
//! δñ = δh_t ⊙ (1 - z) ⊙ (1 - n²)
//! δz̃ = δh_t ⊙ (h_{t-1} - n) ⊙ z(1-z)
//! δr̃ = δñ ⊙ b_n ⊙ r(1-r)
//! δa = [δr̃ δz̃ δñ]        δb = [δr̃ δz̃ δñ ⊙ r]
//! ∂W_ih += δa x_tᵀ, ∂b_ih += δa, ∂W_hh += δb h_{t-1}ᵀ, ∂b_hh += δb
//! δx_t = W_ihᵀ δa,   δh_{t-1} = W_hhᵀ δb + δh_t ⊙ z   (dropped where truncated BPTT cuts)
//! ```

use super::linalg::{add_assign, matvec_add, matvec_t_add, outer_add, sigmoid};
use super::{LayerParams, Real};

/// What the backward pass needs: hidden states, activated gates and `b_n = W_hn h + b_hn`.
#[derive(Clone, Debug)]
pub(crate) struct Cache<T> {
    /// `h_t`, `steps × hidden`.
    pub(crate) h: Vec<T>,
    /// `[r z n]` after activation, `steps × 3·hidden`.
    gates: Vec<T>,
    /// `W_hn h_{t-1} + b_hn`, `steps × hidden`.
    hn: Vec<T>,
}

/// Runs the layer over `steps` inputs from the state `h0`.
pub(crate) fn forward<T: Real>(p: &LayerParams<T>, xs: &[T], steps: usize, h0: &[T]) -> Cache<T> {
    let (n_in, n_h) = (p.input, p.hidden);
    let mut cache = Cache {
        h: vec![T::zero(); steps * n_h],
        gates: vec![T::zero(); steps * 3 * n_h],
        hn: vec![T::zero(); steps * n_h],
    };
    let mut gh = vec![T::zero(); 3 * n_h];
    for t in 0..steps {
        let gi = &mut cache.gates[t * 3 * n_h..(t + 1) * 3 * n_h];
        gi.copy_from_slice(&p.b_ih);
        matvec_add(&p.w_ih, n_in, &xs[t * n_in..(t + 1) * n_in], gi);
        gh.copy_from_slice(&p.b_hh);
        let (done, rest) = cache.h.split_at_mut(t * n_h);
        let h_prev = if t == 0 { h0 } else { &done[(t - 1) * n_h..] };
        matvec_add(&p.w_hh, n_h, h_prev, &mut gh);
        for k in 0..n_h {
            let r = sigmoid(gi[k] + gh[k]);
            let z = sigmoid(gi[n_h + k] + gh[n_h + k]);
            let n = (gi[2 * n_h + k] + r * gh[2 * n_h + k]).tanh();
            gi[k] = r;
            gi[n_h + k] = z;
            gi[2 * n_h + k] = n;
            cache.hn[t * n_h + k] = gh[2 * n_h + k];
            rest[k] = (T::one() - z) * n + z * h_prev[k];
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
    h0: &[T],
    cache: &Cache<T>,
    dh: &[T],
    cut: &dyn Fn(usize) -> bool,
    g: &mut LayerParams<T>,
    mut dx: Option<&mut [T]>,
) {
    let (n_in, n_h) = (p.input, p.hidden);
    let mut carry = vec![T::zero(); n_h];
    let mut direct = vec![T::zero(); n_h];
    let mut da = vec![T::zero(); 3 * n_h];
    let mut db = vec![T::zero(); 3 * n_h];
    let one = T::one();
    for t in (0..steps).rev() {
        let gates = &cache.gates[t * 3 * n_h..(t + 1) * 3 * n_h];
        let h_prev = if t == 0 {
            h0
        } else {
            &cache.h[(t - 1) * n_h..t * n_h]
        };
        let x_t = &xs[t * n_in..(t + 1) * n_in];
        for k in 0..n_h {
            let (r, z, n) = (gates[k], gates[n_h + k], gates[2 * n_h + k]);
            let d_h = dh[t * n_h + k] + carry[k];
            let dn = d_h * (one - z) * (one - n * n);
            let dz = d_h * (h_prev[k] - n) * z * (one - z);
            let dr = dn * cache.hn[t * n_h + k] * r * (one - r);
            da[k] = dr;
            da[n_h + k] = dz;
            da[2 * n_h + k] = dn;
            db[k] = dr;
            db[n_h + k] = dz;
            db[2 * n_h + k] = dn * r;
            direct[k] = d_h * z;
        }
        add_assign(&mut g.b_ih, &da);
        add_assign(&mut g.b_hh, &db);
        outer_add(&mut g.w_ih, &da, x_t);
        outer_add(&mut g.w_hh, &db, h_prev);
        if let Some(dx) = dx.as_deref_mut() {
            let row = &mut dx[t * n_in..(t + 1) * n_in];
            row.fill(T::zero());
            matvec_t_add(&p.w_ih, n_in, &da, row);
        }
        carry.fill(T::zero());
        if t > 0 && !cut(t) {
            carry.copy_from_slice(&direct);
            matvec_t_add(&p.w_hh, n_h, &db, &mut carry);
        }
    }
}
