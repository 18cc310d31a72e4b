//! Adam (Kingma & Ba), exactly as `torch.optim.Adam` computes it with `weight_decay = 0`,
//! `amsgrad = False`, and global gradient-norm clipping as `torch.nn.utils.clip_grad_norm_`.
//!
//! ```text
//! m ← β₁ m + (1-β₁) g          v ← β₂ v + (1-β₂) g²
//! p ← p - (lr / (1-β₁ᵗ)) · m / (√v / √(1-β₂ᵗ) + ε)
//! ```

/// Adam state for a list of parameter tensors (flattened in a fixed order).
#[derive(Clone, Debug)]
pub struct Adam {
    /// Learning rate.
    pub lr: f32,
    /// β₁ (PyTorch default 0.9).
    pub beta1: f32,
    /// β₂ (PyTorch default 0.999).
    pub beta2: f32,
    /// ε (PyTorch default 1e-8).
    pub eps: f32,
    step: i32,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl Adam {
    /// Adam with PyTorch's defaults and learning rate `lr`, for tensors of the given sizes.
    pub fn new(lr: f32, sizes: &[usize]) -> Adam {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            step: 0,
            m: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            v: sizes.iter().map(|&n| vec![0.0; n]).collect(),
        }
    }

    /// One update of `params` with `grads` (same tensors, same order as at construction).
    pub fn step(&mut self, params: &mut [&mut [f32]], grads: &[&[f32]]) {
        self.step += 1;
        let bc1 = 1.0 - f64::from(self.beta1).powi(self.step);
        let bc2 = 1.0 - f64::from(self.beta2).powi(self.step);
        let step_size = (f64::from(self.lr) / bc1) as f32;
        let bc2_sqrt = bc2.sqrt() as f32;
        let (b1, b2, eps) = (self.beta1, self.beta2, self.eps);
        for (((p, g), m), v) in params
            .iter_mut()
            .zip(grads)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            for (((p, &g), m), v) in p
                .iter_mut()
                .zip(g.iter())
                .zip(m.iter_mut())
                .zip(v.iter_mut())
            {
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *p -= step_size * *m / (v.sqrt() / bc2_sqrt + eps);
            }
        }
    }
}

/// Scales `grads` so that their global L2 norm is at most `max_norm` (like
/// `clip_grad_norm_`: factor `max_norm / (norm + 1e-6)`, applied only when it is below 1).
/// Returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut [&mut [f32]], max_norm: f32) -> f32 {
    let sq: f64 = grads
        .iter()
        .flat_map(|g| g.iter())
        .map(|&v| f64::from(v) * f64::from(v))
        .sum();
    let norm = sq.sqrt() as f32;
    let factor = max_norm / (norm + 1e-6);
    if factor < 1.0 {
        for g in grads.iter_mut() {
            for v in g.iter_mut() {
                *v *= factor;
            }
        }
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three Adam steps on f(p) = p²/2 (g = p), checked against values computed by hand with
    /// the formula above (equal to `torch.optim.Adam(lr=0.1)` on the same problem).
    #[test]
    fn adam_matches_reference_steps() {
        let mut p = vec![1.0f32, -2.0];
        let mut opt = Adam::new(0.1, &[2]);
        for _ in 0..3 {
            let g = p.clone();
            opt.step(&mut [&mut p], &[&g]);
        }
        // The first step moves each parameter by exactly lr·sign(g); later ones by about lr.
        let (mut rp, mut m, mut v) = ([1.0f64, -2.0], [0.0f64; 2], [0.0f64; 2]);
        for t in 1..=3 {
            for k in 0..2 {
                let g = rp[k];
                m[k] = 0.9 * m[k] + 0.1 * g;
                v[k] = 0.999 * v[k] + 0.001 * g * g;
                let mh = m[k] / (1.0 - 0.9f64.powi(t));
                let vh = v[k] / (1.0 - 0.999f64.powi(t));
                rp[k] -= 0.1 * mh / (vh.sqrt() + 1e-8);
            }
        }
        for k in 0..2 {
            assert!((f64::from(p[k]) - rp[k]).abs() < 1e-6, "{p:?} vs {rp:?}");
        }
    }

    #[test]
    fn clipping_scales_to_max_norm() {
        let mut a = vec![3.0f32];
        let mut b = vec![4.0f32];
        let n = clip_grad_norm(&mut [&mut a, &mut b], 1.0);
        assert!((n - 5.0).abs() < 1e-6);
        assert!(((a[0] * a[0] + b[0] * b[0]).sqrt() - 1.0).abs() < 1e-5);
        let mut c = vec![0.1f32];
        clip_grad_norm(&mut [&mut c], 1.0);
        assert_eq!(c[0], 0.1);
    }
}
