//! Element-wise and row-wise maths of the encoder, written so the compiler vectorises it:
//! branch-free polynomial `erf` and `exp`, fixed-width lane accumulators for the sums.
//!
//! Each public function runs its body compiled for AVX-512 when the CPU has it (checked
//! once), else as built.

use std::sync::OnceLock;

/// Whether this CPU runs the AVX-512 kernels.
pub fn has_avx512() -> bool {
    static DETECTED: OnceLock<bool> = OnceLock::new();
    *DETECTED.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::is_x86_feature_detected!("avx512f")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// Defines `pub fn $name($args)` that runs `$body` compiled with AVX-512 enabled when the
/// CPU has it. The body must be safe code; `#[inline(always)]` helpers it calls are
/// compiled for AVX-512 along with it.
macro_rules! simd_fn {
    ($(#[$meta:meta])* pub fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        pub fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn wide($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
                if $crate::math::has_avx512() {
                    // SAFETY: the CPU supports AVX-512F (checked above).
                    return unsafe { wide($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use simd_fn;

/// Lanes of the accumulators in sums: one AVX-512 register.
const LANES: usize = 16;

/// erf(x) for f32, as a rational function of x (the approximation Eigen and TensorFlow use
/// for float): within a few ulp on [-4, 4], and ±1 to float precision outside.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p + -2.101_024e-6;
    p = x2 * p + -5.692_506_4e-5;
    p = x2 * p + -7.349_906_3e-4;
    p = x2 * p + -2.954_600_1e-3;
    p = x2 * p + -1.609_603_3e-2;
    p *= x;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = x2 * q + -1.682_827e-3;
    q = x2 * q + -7.373_329_2e-3;
    q = x2 * q + -1.426_474e-2;
    p / q
}

/// e^x for f32 (Cephes' `expf`): range reduction by ln 2, a degree-6 polynomial, the
/// exponent put back through the float's bits. Relative error about 2e-7; 0 below -87.
/// Integer work is done on the bits (no float-to-int casts), so loops of it vectorise.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two, so r = x - n·ln 2 stays exact.
    const LN2_HIGH: f32 = 0.693_359_4;
    const LN2_LOW: f32 = -2.121_944_4e-4;
    // 1.5·2²³: adding it rounds to an integer, which then sits in the low mantissa bits.
    const ROUNDER: f32 = 12_582_912.0;
    let clamped = x.clamp(-87.0, 88.0);
    let shifted = clamped * LOG2_E + ROUNDER;
    let n = shifted - ROUNDER;
    let r = clamped - n * LN2_HIGH - n * LN2_LOW;
    let r2 = r * r;
    let mut y = 1.987_569_1e-4f32;
    y = y * r + 1.398_199_9e-3;
    y = y * r + 8.333_452e-3;
    y = y * r + 4.166_579_6e-2;
    y = y * r + 1.666_666_5e-1;
    y = y * r + 0.5;
    y = y * r2 + r + 1.0;
    // 2ⁿ: n + 127 in the exponent field (n ∈ [-126, 127] after the clamp).
    let scale = f32::from_bits(shifted.to_bits().wrapping_add(127) << 23);
    if x < -87.0 {
        0.0
    } else {
        y * scale
    }
}

simd_fn! {
    /// BERT's GELU, `x·(1 + erf(x/√2))/2`, in place.
    pub fn gelu_in_place(values: &mut [f32]) {
        for v in values.iter_mut() {
            let x = *v;
            *v = 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
        }
    }
}

/// Sum of a slice in [`LANES`] independent lanes (vectorisable; the order differs from a
/// sequential sum by rounding only).
#[inline(always)]
fn lane_sum(values: &[f32]) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane += v;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Largest value of a slice, in [`LANES`] lanes (vectorisable); −∞ for an empty slice.
#[inline(always)]
fn lane_max(values: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for chunk in chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane = if *v > *lane { *v } else { *lane };
        }
    }
    lanes.iter().fold(tail, |m, &v| m.max(v))
}

simd_fn! {
    /// `row = LayerNorm(row + residual)` for every row of width `gamma.len()`: mean and
    /// variance over the row (biased, as BERT), then scale and shift.
    pub fn add_and_norm(rows: &mut [f32], residual: &[f32], gamma: &[f32], beta: &[f32], epsilon: f32) {
        let width = gamma.len();
        for (row, res) in rows.chunks_exact_mut(width).zip(residual.chunks_exact(width)) {
            for (v, r) in row.iter_mut().zip(res) {
                *v += r;
            }
            normalise_row(row, gamma, beta, epsilon);
        }
    }
}

simd_fn! {
    /// `row = LayerNorm(row)` for every row of width `gamma.len()`.
    pub fn norm(rows: &mut [f32], gamma: &[f32], beta: &[f32], epsilon: f32) {
        for row in rows.chunks_exact_mut(gamma.len()) {
            normalise_row(row, gamma, beta, epsilon);
        }
    }
}

#[inline(always)]
fn normalise_row(row: &mut [f32], gamma: &[f32], beta: &[f32], epsilon: f32) {
    let width = row.len() as f32;
    let mean = lane_sum(row) / width;
    // Two passes (centre, then square) as PyTorch does: no cancellation for large means.
    let mut squares = [0.0f32; LANES];
    let chunks = row.chunks_exact(LANES);
    let mut tail = 0.0f32;
    for v in chunks.remainder() {
        tail += (v - mean) * (v - mean);
    }
    for chunk in chunks {
        for (lane, v) in squares.iter_mut().zip(chunk) {
            *lane += (v - mean) * (v - mean);
        }
    }
    let variance = (squares.iter().sum::<f32>() + tail) / width;
    let inverse = 1.0 / (variance + epsilon).sqrt();
    for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
        *v = (*v - mean) * inverse * g + b;
    }
}

/// `scores = softmax(scores)` over the whole slice (inlined into the caller's kernel).
#[inline(always)]
pub fn softmax_row(scores: &mut [f32]) {
    let max = lane_max(scores);
    for v in scores.iter_mut() {
        *v = exp(*v - max);
    }
    let inverse = 1.0 / lane_sum(scores);
    for v in scores.iter_mut() {
        *v *= inverse;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// erf in f64 by its Taylor series (|x| ≤ 4.5, where the series is still precise to
    /// ~1e-9), ±1 beyond.
    pub(crate) fn erf_f64(x: f64) -> f64 {
        if x.abs() > 4.5 {
            return x.signum();
        }
        let mut term = x;
        let mut sum = x;
        for n in 1..200 {
            term *= -x * x / n as f64;
            let next = term / (2 * n + 1) as f64;
            sum += next;
            if next.abs() < 1e-17 {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn erf_is_within_float_precision() {
        let mut worst = 0.0f64;
        for i in -6000..=6000 {
            let x = i as f32 / 1000.0;
            let error = (f64::from(erf(x)) - erf_f64(f64::from(x))).abs();
            worst = worst.max(error);
        }
        assert!(worst < 5e-7, "worst absolute error {worst}");
    }

    #[test]
    fn exp_is_within_float_precision() {
        let mut worst = 0.0f64;
        for i in -8700..=8800 {
            let x = i as f32 / 100.0;
            let want = f64::from(x).exp();
            let relative = ((f64::from(exp(x)) - want) / want).abs();
            worst = worst.max(relative);
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert_eq!(exp(-1.0e9), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
    }

    #[test]
    fn gelu_matches_its_definition() {
        let mut values: Vec<f32> = (-100..=100).map(|i| i as f32 / 10.0).collect();
        let inputs = values.clone();
        gelu_in_place(&mut values);
        for (got, x) in values.iter().zip(&inputs) {
            let x = f64::from(*x);
            let want = 0.5 * x * (1.0 + erf_f64(x / 2f64.sqrt()));
            assert!(
                (f64::from(*got) - want).abs() < 1e-6,
                "gelu({x}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn layer_norm_centres_and_scales_each_row() {
        let mut rows: Vec<f32> = (0..40).map(|i| 1000.0 + (i % 20) as f32).collect();
        let residual = vec![1.0f32; 40];
        let gamma = vec![2.0f32; 20];
        let beta = vec![0.5f32; 20];
        add_and_norm(&mut rows, &residual, &gamma, &beta, 1e-12);
        for row in rows.chunks(20) {
            let mean: f32 = row.iter().map(|v| (v - 0.5) / 2.0).sum::<f32>() / 20.0;
            let var: f32 = row.iter().map(|v| ((v - 0.5) / 2.0).powi(2)).sum::<f32>() / 20.0;
            assert!(mean.abs() < 1e-5, "{mean}");
            assert!((var - 1.0).abs() < 1e-4, "{var}");
        }
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let mut scores = vec![1.0f32, 2.0, 3.0, -1.0e9, 0.5];
        softmax_row(&mut scores);
        assert!((scores.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(scores[3], 0.0);
        assert!(scores[2] > scores[1] && scores[1] > scores[0] && scores[0] > scores[4]);
    }
}
