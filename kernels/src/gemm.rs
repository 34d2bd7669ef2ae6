//! The encoder's dense layers, `out = x·W + bias` (optionally through GELU), on the CPU.
//!
//! `W` is packed once, when the model loads, into column panels of [`NR`] columns stored
//! row after row, so the micro-kernel reads each panel as one sequential stream. Rows of `x`
//! are read in place (no packing: a block of them stays in L2 while every panel passes).
//! The work is split into tiles (row blocks × panel groups) over rayon's threads.
//!
//! Kernels: AVX-512 when the CPU has it (checked at run time), else a portable one that
//! the compiler vectorises for whatever the build targets.

use crate::math;
use crate::SharedOut;
use rayon::prelude::*;

/// Columns per packed panel: two 16-lane AVX-512 registers.
const NR: usize = 32;
/// Rows per micro-kernel call: 8 rows × 2 registers = 16 accumulators, leaving registers for
/// the panel's two vectors and the broadcasts.
const MR: usize = 8;
/// Bytes of `x` one tile may touch: about a quarter of a 2 MiB L2, so a tile's rows stay
/// there while all of its panels stream past.
const TILE_ROW_BYTES: usize = 512 * 1024;

/// What to apply to `x·W + bias` before storing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Identity,
    /// The exact (erf) GELU that BERT uses.
    Gelu,
}

/// A dense layer with its weight packed for [`PackedLinear::forward`].
#[derive(Debug, Clone)]
pub struct PackedLinear {
    d_in: usize,
    d_out: usize,
    /// Panel `p` holds columns `p·NR .. p·NR + NR` as `d_in` rows of `NR` values; columns
    /// past `d_out` are zero.
    panels: Vec<f32>,
    /// Padded with zeros to a whole number of panels.
    bias: Vec<f32>,
}

impl PackedLinear {
    /// `weight` is `[d_in, d_out]`, row-major (input-major, as `y = x·W`).
    pub fn new(weight: &[f32], d_in: usize, d_out: usize, bias: &[f32]) -> Self {
        assert_eq!(weight.len(), d_in * d_out, "weight shape");
        assert_eq!(bias.len(), d_out, "bias length");
        let panel_count = d_out.div_ceil(NR);
        let mut panels = vec![0.0; panel_count * d_in * NR];
        for (p, panel) in panels.chunks_exact_mut(d_in * NR).enumerate() {
            let first = p * NR;
            let width = NR.min(d_out - first);
            for (row, packed) in panel.chunks_exact_mut(NR).enumerate() {
                let source = &weight[row * d_out + first..row * d_out + first + width];
                packed[..width].copy_from_slice(source);
            }
        }
        let mut padded_bias = vec![0.0; panel_count * NR];
        padded_bias[..d_out].copy_from_slice(bias);
        Self {
            d_in,
            d_out,
            panels,
            bias: padded_bias,
        }
    }

    pub fn d_out(&self) -> usize {
        self.d_out
    }

    fn panel_count(&self) -> usize {
        self.d_out.div_ceil(NR)
    }

    /// `x: [rows, d_in]` → `out: [rows, d_out]` (overwritten), both row-major.
    pub fn forward(&self, x: &[f32], rows: usize, out: &mut [f32], activation: Activation) {
        assert_eq!(x.len(), rows * self.d_in, "input shape");
        assert_eq!(out.len(), rows * self.d_out, "output shape");
        if rows == 0 {
            return;
        }
        let threads = rayon::current_num_threads().max(1);
        // Row blocks: small enough to stay in L2, as many as a multiple of the thread count
        // when there are enough rows, and of (nearly) equal size, so that no thread waits on
        // a bigger share. With few rows the panels are split between threads instead.
        let cache_rows = (TILE_ROW_BYTES / (4 * self.d_in)).max(MR) / MR * MR;
        let mut row_blocks = rows.div_ceil(cache_rows);
        if rows >= threads * MR {
            row_blocks = row_blocks.div_ceil(threads) * threads;
        }
        let block_rows = rows.div_ceil(row_blocks).div_ceil(MR) * MR;
        let row_blocks = rows.div_ceil(block_rows);
        let panel_groups = if row_blocks >= threads {
            1
        } else {
            (threads / row_blocks).min(self.panel_count())
        };
        let panels_per_group = self.panel_count().div_ceil(panel_groups);
        let out_ptr = SharedOut::new(out);
        let tiles = row_blocks * panel_groups;
        let run_tile = |tile: usize| {
            let (block, group) = (tile / panel_groups, tile % panel_groups);
            let first_row = block * block_rows;
            let row_count = block_rows.min(rows - first_row);
            let first_panel = group * panels_per_group;
            let last_panel = (first_panel + panels_per_group).min(self.panel_count());
            // SAFETY: tiles cover disjoint (row, column) ranges of `out`, which outlives
            // this call; each tile writes only its own range.
            unsafe {
                self.tile(
                    x,
                    first_row,
                    row_count,
                    first_panel..last_panel,
                    out_ptr,
                    activation,
                )
            };
        };
        if tiles == 1 {
            run_tile(0);
        } else {
            (0..tiles).into_par_iter().for_each(run_tile);
        }
    }

    /// # Safety
    /// No other thread may write rows `first_row..first_row + row_count` of the columns
    /// of `panels` in `out` while this runs.
    unsafe fn tile(
        &self,
        x: &[f32],
        first_row: usize,
        row_count: usize,
        panels: std::ops::Range<usize>,
        out: SharedOut,
        activation: Activation,
    ) {
        let k = self.d_in;
        for panel in panels {
            let first_col = panel * NR;
            down_panel(
                x,
                k,
                first_row..first_row + row_count,
                &self.panels[panel * k * NR..(panel + 1) * k * NR],
                &self.bias[panel * NR..(panel + 1) * NR],
                out.get().add(first_col),
                self.d_out,
                NR.min(self.d_out - first_col),
                activation,
            );
        }
    }
}

/// Runs the micro-kernel down `rows` of `x` (`k` values each) against one packed panel,
/// writing `cols` columns from `out` (the panel's first column in row 0) with row stride
/// `ldc`, then `activation` on each stored row while it is still in L1.
///
/// # Safety
/// `out` must be valid for writes of `cols` values at `out + r·ldc` for every `r` in
/// `rows`, and nothing else may write there meanwhile.
#[allow(clippy::too_many_arguments)]
unsafe fn down_panel(
    x: &[f32],
    k: usize,
    rows: std::ops::Range<usize>,
    weights: &[f32],
    bias: &[f32],
    out: *mut f32,
    ldc: usize,
    cols: usize,
    activation: Activation,
) {
    let mut row = rows.start;
    while row < rows.end {
        let count = MR.min(rows.end - row);
        let c = out.add(row * ldc);
        micro_kernel(
            count,
            k,
            &x[row * k..(row + count) * k],
            weights,
            bias,
            c,
            ldc,
            cols,
        );
        if activation == Activation::Gelu {
            for r in 0..count {
                math::gelu_in_place(std::slice::from_raw_parts_mut(c.add(r * ldc), cols));
            }
        }
        row += count;
    }
}

/// Columns per panel of a packed operand.
pub const PANEL: usize = NR;

/// Length of a `[k, n]` operand packed in panels: `n` rounded up to whole panels of
/// [`PANEL`] columns, each stored as `k` rows of [`PANEL`] values (padding zero).
pub fn packed_len(k: usize, n: usize) -> usize {
    n.div_ceil(NR) * k * NR
}

/// `out[r·ldc + c] = Σ_p a[r·k + p]·B[p][c]` for `r < rows`, `c < n`, with `B` packed as
/// [`packed_len`] describes; on the calling thread (for attention's small per-head
/// products).
pub fn product(
    a: &[f32],
    rows: usize,
    k: usize,
    packed: &[f32],
    n: usize,
    out: &mut [f32],
    ldc: usize,
) {
    assert_eq!(a.len(), rows * k, "left operand shape");
    assert_eq!(packed.len(), packed_len(k, n), "packed operand shape");
    assert!(
        ldc >= n && (rows == 0 || out.len() >= (rows - 1) * ldc + n),
        "output shape"
    );
    const ZERO_BIAS: [f32; NR] = [0.0; NR];
    for (p, panel) in packed.chunks_exact(k * NR).enumerate() {
        // SAFETY: rows `0..rows`, columns `p·NR..p·NR + cols` of `out` are in bounds
        // (asserted above) and `out` is borrowed mutably for this call.
        unsafe {
            down_panel(
                a,
                k,
                0..rows,
                panel,
                &ZERO_BIAS,
                out.as_mut_ptr().add(p * NR),
                ldc,
                NR.min(n - p * NR),
                Activation::Identity,
            )
        };
    }
}

/// `c[r][0..cols] = bias + Σ_p a[r][p]·w[p][·]` for `rows ≤ MR` rows.
///
/// # Safety
/// `c` must be valid for `rows` rows of `ldc` floats, `cols` of them written per row.
#[allow(clippy::too_many_arguments)]
unsafe fn micro_kernel(
    rows: usize,
    k: usize,
    a: &[f32],
    w: &[f32],
    bias: &[f32],
    c: *mut f32,
    ldc: usize,
    cols: usize,
) {
    debug_assert!((1..=MR).contains(&rows) && a.len() == rows * k && w.len() == k * NR);
    #[cfg(target_arch = "x86_64")]
    if math::has_avx512() {
        macro_rules! avx512 {
            ($($n:literal)*) => {
                match rows {
                    $($n => avx512::kernel::<$n>(k, a.as_ptr(), w.as_ptr(), bias.as_ptr(), c, ldc, cols),)*
                    _ => unreachable!(),
                }
            };
        }
        avx512!(1 2 3 4 5 6 7 8);
        return;
    }
    macro_rules! portable {
        ($($n:literal)*) => {
            match rows {
                $($n => portable_kernel::<$n>(k, a, w, bias, c, ldc, cols),)*
                _ => unreachable!(),
            }
        };
    }
    portable!(1 2 3 4 5 6 7 8);
}

#[inline(always)]
unsafe fn portable_kernel<const ROWS: usize>(
    k: usize,
    a: &[f32],
    w: &[f32],
    bias: &[f32],
    c: *mut f32,
    ldc: usize,
    cols: usize,
) {
    let mut acc = [[0.0f32; NR]; ROWS];
    for row in acc.iter_mut() {
        row.copy_from_slice(&bias[..NR]);
    }
    for (p, panel_row) in w.chunks_exact(NR).enumerate() {
        for (r, acc_row) in acc.iter_mut().enumerate() {
            let value = a[r * k + p];
            for (sum, weight) in acc_row.iter_mut().zip(panel_row) {
                *sum += value * weight;
            }
        }
    }
    for (r, acc_row) in acc.iter().enumerate() {
        std::ptr::copy_nonoverlapping(acc_row.as_ptr(), c.add(r * ldc), cols);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::NR;
    use std::arch::x86_64::*;

    /// The AVX-512 micro-kernel: `ROWS × 32` accumulators in registers, one FMA per
    /// (row, register) per step of `k`, the row's value broadcast from memory.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn kernel<const ROWS: usize>(
        k: usize,
        a: *const f32,
        w: *const f32,
        bias: *const f32,
        c: *mut f32,
        ldc: usize,
        cols: usize,
    ) {
        let bias_low = _mm512_loadu_ps(bias);
        let bias_high = _mm512_loadu_ps(bias.add(16));
        let mut low = [bias_low; ROWS];
        let mut high = [bias_high; ROWS];
        for p in 0..k {
            let w_low = _mm512_loadu_ps(w.add(p * NR));
            let w_high = _mm512_loadu_ps(w.add(p * NR + 16));
            for r in 0..ROWS {
                let value = _mm512_set1_ps(*a.add(r * k + p));
                low[r] = _mm512_fmadd_ps(value, w_low, low[r]);
                high[r] = _mm512_fmadd_ps(value, w_high, high[r]);
            }
        }
        if cols == NR {
            for r in 0..ROWS {
                _mm512_storeu_ps(c.add(r * ldc), low[r]);
                _mm512_storeu_ps(c.add(r * ldc + 16), high[r]);
            }
        } else {
            let mask_low: __mmask16 = if cols >= 16 {
                0xffff
            } else {
                (1u16 << cols) - 1
            };
            let mask_high: __mmask16 = if cols <= 16 {
                0
            } else {
                ((1u32 << (cols - 16)) - 1) as u16
            };
            for r in 0..ROWS {
                _mm512_mask_storeu_ps(c.add(r * ldc), mask_low, low[r]);
                _mm512_mask_storeu_ps(c.add(r * ldc + 16), mask_high, high[r]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(
        x: &[f32],
        w: &[f32],
        bias: &[f32],
        rows: usize,
        d_in: usize,
        d_out: usize,
    ) -> Vec<f32> {
        let mut out = vec![0.0f32; rows * d_out];
        for r in 0..rows {
            for j in 0..d_out {
                let mut sum = f64::from(bias[j]);
                for p in 0..d_in {
                    sum += f64::from(x[r * d_in + p]) * f64::from(w[p * d_out + j]);
                }
                out[r * d_out + j] = sum as f32;
            }
        }
        out
    }

    fn pseudo_random(len: usize, seed: u32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(2_654_435_761).max(1);
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn matches_a_naive_product_for_ragged_shapes() {
        // Row counts around the micro-kernel and tile sizes, column counts that leave a
        // partial panel.
        for &(rows, d_in, d_out) in &[
            (1, 3, 5),
            (7, 16, 32),
            (9, 40, 33),
            (70, 64, 100),
            (17, 384, 1152),
            // Several row blocks per thread (the L2 budget at d_in = 1536 is 80 rows).
            (433, 1536, 40),
        ] {
            let x = pseudo_random(rows * d_in, 1);
            let w = pseudo_random(d_in * d_out, 2);
            let bias = pseudo_random(d_out, 3);
            let packed = PackedLinear::new(&w, d_in, d_out, &bias);
            let mut out = vec![f32::NAN; rows * d_out];
            packed.forward(&x, rows, &mut out, Activation::Identity);
            let expected = naive(&x, &w, &bias, rows, d_in, d_out);
            for (i, (got, want)) in out.iter().zip(&expected).enumerate() {
                assert!(
                    (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                    "{rows}×{d_in}×{d_out} [{i}]: {got} vs {want}"
                );
            }
        }
    }

    /// What runs on CPUs without AVX-512 (this machine takes the AVX-512 path above).
    #[test]
    fn the_portable_kernel_matches_a_naive_product() {
        let (rows, k) = (5, 37);
        let a = pseudo_random(rows * k, 9);
        let w = pseudo_random(k * NR, 10);
        let bias = pseudo_random(NR, 11);
        let mut out = vec![f32::NAN; rows * NR];
        // SAFETY: `out` holds `rows` rows of `NR` values.
        unsafe { portable_kernel::<5>(k, &a, &w, &bias, out.as_mut_ptr(), NR, NR) };
        let expected = naive(&a, &w, &bias, rows, k, NR);
        for (got, want) in out.iter().zip(&expected) {
            assert!(
                (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                "{got} vs {want}"
            );
        }
    }

    #[test]
    fn gelu_is_applied_after_the_bias() {
        let (rows, d_in, d_out) = (11, 24, 40);
        let x = pseudo_random(rows * d_in, 4);
        let w = pseudo_random(d_in * d_out, 5);
        let bias = pseudo_random(d_out, 6);
        let packed = PackedLinear::new(&w, d_in, d_out, &bias);
        let mut out = vec![0.0; rows * d_out];
        packed.forward(&x, rows, &mut out, Activation::Gelu);
        let expected = naive(&x, &w, &bias, rows, d_in, d_out);
        for (got, pre) in out.iter().zip(&expected) {
            let want = 0.5 * f64::from(*pre) * (1.0 + libm_erf(f64::from(*pre) / 2f64.sqrt()));
            assert!((f64::from(*got) - want).abs() < 1e-5, "{got} vs {want}");
        }
    }

    #[test]
    fn products_with_packed_operands_match_naive_ones() {
        for &(rows, k, n, ldc) in &[
            (1, 32, 1, 1),
            (14, 32, 14, 14),
            (9, 17, 40, 45),
            (128, 128, 32, 32),
        ] {
            let a = pseudo_random(rows * k, 7);
            let b = pseudo_random(k * n, 8);
            let mut packed = vec![0.0; packed_len(k, n)];
            for row in 0..k {
                for col in 0..n {
                    packed[(col / NR) * k * NR + row * NR + col % NR] = b[row * n + col];
                }
            }
            let mut out = vec![f32::NAN; rows * ldc];
            product(&a, rows, k, &packed, n, &mut out, ldc);
            let expected = naive(&a, &b, &vec![0.0; n], rows, k, n);
            for r in 0..rows {
                for c in 0..n {
                    let (got, want) = (out[r * ldc + c], expected[r * n + c]);
                    assert!(
                        (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                        "{got} vs {want}"
                    );
                }
            }
        }
    }

    fn libm_erf(x: f64) -> f64 {
        crate::math::tests::erf_f64(x)
    }
}
