//! The linear head and the softmax cross-entropy loss, with their gradients.
//!
//! ```text
//! z = W h + b                                 (W: classes × hidden, PyTorch `nn.Linear`)
//! loss = log Σ_j exp z_j - z_y                (softmax cross-entropy, label y)
//! δz = softmax(z) - onehot(y)
//! ∂W += δz hᵀ,  ∂b += δz,  δh = Wᵀ δz
//! ```

use super::linalg::{add_assign, matvec_add, matvec_t_add, outer_add};
use super::Real;

/// Parameters (or gradients) of the head.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseParams<T> {
    /// Input features (the last layer's hidden size).
    pub input: usize,
    /// Outputs (classes).
    pub output: usize,
    /// `output × input`, row-major.
    pub weight: Vec<T>,
    /// `output`.
    pub bias: Vec<T>,
}

impl<T: Real> DenseParams<T> {
    /// All-zero parameters of the given shape.
    pub fn zeros(input: usize, output: usize) -> Self {
        DenseParams {
            input,
            output,
            weight: vec![T::zero(); input * output],
            bias: vec![T::zero(); output],
        }
    }

    /// Logits `W h + b` into `out` (`output` entries).
    pub fn logits(&self, h: &[T], out: &mut [T]) {
        out.copy_from_slice(&self.bias);
        matvec_add(&self.weight, self.input, h, out);
    }

    /// Forward and backward for one labelled hidden state: returns the cross-entropy loss and
    /// whether the arg-max of the logits equals `label`; adds `scale · ∂loss` to `g` and
    /// `scale · ∂loss/∂h` to `dh`.
    pub fn loss_backward(
        &self,
        h: &[T],
        label: usize,
        scale: T,
        g: &mut DenseParams<T>,
        dh: &mut [T],
    ) -> (f64, bool) {
        let mut z = vec![T::zero(); self.output];
        self.logits(h, &mut z);
        let (loss, correct) = softmax_cross_entropy(&mut z, label);
        // z now holds softmax - onehot.
        for v in z.iter_mut() {
            *v = *v * scale;
        }
        add_assign(&mut g.bias, &z);
        outer_add(&mut g.weight, &z, h);
        matvec_t_add(&self.weight, self.input, &z, dh);
        (loss, correct)
    }
}

/// Index of the largest value (the first on ties; 0 for an empty slice).
pub fn argmax<T: Real>(z: &[T]) -> usize {
    let mut best = 0;
    for (k, v) in z.iter().enumerate() {
        if *v > z[best] {
            best = k;
        }
    }
    best
}

/// Cross-entropy of the logits `z` against `label`; overwrites `z` with its gradient
/// `softmax(z) - onehot(label)`. Returns `(loss, argmax(z) == label)`. The max is subtracted
/// before `exp` so that large logits cannot overflow.
pub fn softmax_cross_entropy<T: Real>(z: &mut [T], label: usize) -> (f64, bool) {
    let correct = argmax(z) == label;
    let zy = z[label];
    let m = z.iter().fold(T::neg_infinity(), |a, &b| a.max(b));
    let mut sum = T::zero();
    for v in z.iter_mut() {
        *v = (*v - m).exp();
        sum += *v;
    }
    let loss = sum.ln() + m - zy;
    for v in z.iter_mut() {
        *v = *v / sum;
    }
    z[label] -= T::one();
    (loss.to_f64().unwrap_or(f64::NAN), correct)
}
