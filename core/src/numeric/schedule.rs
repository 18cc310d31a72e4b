//! [`Schedule`]: how the cells order a [`Numeric`] type's work on this target.

use super::Numeric;

/// Scheduling hints: which gate rows the cells compute in one pass, and whether they update
/// eight units at a time. Every item defaults to one row and one unit at a time through
/// [`Numeric`], so `impl Schedule for MyType {}` is complete. A schedule changes the order of
/// work, never the result — except that `f32` on Cortex-M cores with an FPU sums fused rows in
/// order (see [`preact_rows`](Schedule::preact_rows)).
pub trait Schedule: Numeric {
    /// Whether [`preact_rows`](Schedule::preact_rows) and [`gru_preacts`](Schedule::gru_preacts)
    /// share work between rows on this target. Cells ask first: where nothing is shared, LLVM
    /// specialises their row-by-row loop better.
    const FUSES_ROWS: bool = false;

    /// The pre-activations of `G` rows — the gates of one unit — at once:
    /// `out[g] = preact(bias[g], w_x[g], scale_x[g], x, w_h[g], scale_h[g], h)`.
    ///
    /// The default computes the rows one by one ([`preact_rows_one_by_one`]); a type may share
    /// every load of `x` and `h` between them. `f32` does on the host, with the sums of
    /// `preact`, and on FPU cores, summing each row in order (`kernel::arm_fpu`).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn preact_rows<const G: usize>(
        bias: &[Self::Bias; G],
        w_x: [&[Self::Weight]; G],
        scale_x: &[Self::RowScale; G],
        x: &[Self::Act],
        w_h: [&[Self::Weight]; G],
        scale_h: &[Self::RowScale; G],
        h: &[Self::Act],
        format: &Self::Format,
    ) -> [Self::Pre; G] {
        preact_rows_one_by_one::<Self, G>(bias, w_x, scale_x, x, w_h, scale_h, h, format)
    }

    /// The four sums of one GRU unit, `[r, z, n_x, n_h]`, from the rows r, z, n (in that order)
    /// of `w_x` and of `w_h`: `r` and `z` are full pre-activations (biases `bias[0]`,
    /// `bias[1]`), `n_x` the input part of the candidate (bias `bias[2]`, no `h`) and `n_h` its
    /// recurrent part (bias `bias[3]`, no `x`). The default: [`gru_preacts_one_by_one`].
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn gru_preacts(
        bias: &[Self::Bias; 4],
        w_x: [&[Self::Weight]; 3],
        scale_x: &[Self::RowScale; 3],
        x: &[Self::Act],
        w_h: [&[Self::Weight]; 3],
        scale_h: &[Self::RowScale; 3],
        h: &[Self::Act],
        format: &Self::Format,
    ) -> [Self::Pre; 4] {
        gru_preacts_one_by_one::<Self>(bias, w_x, scale_x, x, w_h, scale_h, h, format)
    }

    /// Whether the cells update eight units at a time (the `*_eight*` methods below) and the
    /// dense head takes four rows at a time. `f32` does on the host, each activation of the
    /// eight units one vector, so that their dependency chains run side by side.
    const BLOCKS_OF_EIGHT: bool = false;

    /// The LSTM update of eight units, [`lstm_update`](crate::Elementwise::lstm_update) of `pre[u]` and
    /// `c[u]` for every `u`; returns the units' `h'` and leaves `c'` in `c`.
    #[inline(always)]
    fn lstm_update_eight(
        pre: [[Self::Pre; 4]; 8],
        c: &mut [Self::Cell; 8],
        format: &Self::Format,
    ) -> [Self::Act; 8] {
        core::array::from_fn(|u| Self::lstm_update(pre[u], &mut c[u], format))
    }

    /// The GRU update of eight units, [`gru_update`](crate::Elementwise::gru_update) of `pre[u]` and
    /// `h_prev[u]` for every `u`.
    #[inline(always)]
    fn gru_update_eight(
        pre: [[Self::Pre; 4]; 8],
        h_prev: &[Self::Act; 8],
        format: &Self::Format,
    ) -> [Self::Act; 8] {
        core::array::from_fn(|u| Self::gru_update(pre[u], h_prev[u], format))
    }

    /// [`lstm_update_eight`](Schedule::lstm_update_eight) straight from the weights in the lane
    /// layout of the const-generic layers (one 8-lane vector per input and gate; biases
    /// unit-major), with the sums of [`preact`](Numeric::preact). `None` where the type has no
    /// such path or the weights are not aligned for it: the caller takes the general one.
    #[inline(always)]
    fn lstm_eight_units(
        bias: &[[Self::Bias; 4]; 8],
        w_x: &[Self::Weight],
        x: &[Self::Act],
        w_h: &[Self::Weight],
        h: &[Self::Act],
        c: &mut [Self::Cell; 8],
    ) -> Option<[Self::Act; 8]> {
        let _ = (bias, w_x, x, w_h, h, c);
        None
    }

    /// [`gru_update_eight`](Schedule::gru_update_eight) straight from the weights in the lane
    /// layout (as [`lstm_eight_units`](Schedule::lstm_eight_units)), `bias[u]` = `[b_r, b_z,
    /// b_in]`, with the sums of [`gru_preacts`](Schedule::gru_preacts); or `None`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn gru_eight_units(
        bias: &[[Self::Bias; 3]; 8],
        bias_hn: &[Self::Bias; 8],
        w_x: &[Self::Weight],
        x: &[Self::Act],
        w_h: &[Self::Weight],
        h: &[Self::Act],
        h_old: &[Self::Act; 8],
    ) -> Option<[Self::Act; 8]> {
        let _ = (bias, bias_hn, w_x, x, w_h, h, h_old);
        None
    }
}

/// [`Schedule::preact_rows`] as `G` calls of [`Numeric::preact`], one per row.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn preact_rows_one_by_one<N: Numeric, const G: usize>(
    bias: &[N::Bias; G],
    w_x: [&[N::Weight]; G],
    scale_x: &[N::RowScale; G],
    x: &[N::Act],
    w_h: [&[N::Weight]; G],
    scale_h: &[N::RowScale; G],
    h: &[N::Act],
    format: &N::Format,
) -> [N::Pre; G] {
    // A plain loop over a const count (unrolled), not `array::from_fn`: that closure can stay
    // out of line, which costs the per-size specialisation of every dot product.
    let mut out = [N::Pre::default(); G];
    for (g, out) in out.iter_mut().enumerate() {
        *out = N::preact(
            bias[g], w_x[g], scale_x[g], x, w_h[g], scale_h[g], h, format,
        );
    }
    out
}

/// [`Schedule::gru_preacts`] as four calls of [`Numeric::preact`].
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn gru_preacts_one_by_one<N: Numeric>(
    bias: &[N::Bias; 4],
    w_x: [&[N::Weight]; 3],
    scale_x: &[N::RowScale; 3],
    x: &[N::Act],
    w_h: [&[N::Weight]; 3],
    scale_h: &[N::RowScale; 3],
    h: &[N::Act],
    format: &N::Format,
) -> [N::Pre; 4] {
    let [b_r, b_z, b_in, b_hn] = *bias;
    [
        N::preact(b_r, w_x[0], scale_x[0], x, w_h[0], scale_h[0], h, format),
        N::preact(b_z, w_x[1], scale_x[1], x, w_h[1], scale_h[1], h, format),
        N::preact(b_in, w_x[2], scale_x[2], x, &[], scale_h[2], &[], format),
        N::preact(b_hn, &[], scale_x[2], &[], w_h[2], scale_h[2], h, format),
    ]
}
