//! Dense linear algebra for model training (EASE's item × item inverse), on the encoder's
//! packed matrix-product kernel (`convrec_kernels::gemm`, AVX-512 when the CPU has it, rayon
//! threads), so no linear-algebra crate is added to the build.
//!
//! Matrices are `f32`, row-major, `n × n` in one `Vec`.

use convrec_kernels::gemm::{Activation, PackedLinear};

/// Below this size a block is inverted directly (Gauss–Jordan in `f64`).
const DIRECT: usize = 256;

/// `a (m × k) · b (k × n)`, row-major, on the packed kernel (all of rayon's threads).
pub fn matmul(a: &[f32], m: usize, k: usize, b: &[f32], n: usize) -> Vec<f32> {
    assert_eq!(a.len(), m * k, "left operand shape");
    assert_eq!(b.len(), k * n, "right operand shape");
    let mut out = vec![0.0; m * n];
    if m == 0 || n == 0 {
        return out;
    }
    if k == 0 {
        return out;
    }
    let packed = PackedLinear::new(b, k, n, &vec![0.0; n]);
    packed.forward(a, m, &mut out, Activation::Identity);
    out
}

/// The transpose of `a (rows × cols)`.
fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; a.len()];
    const TILE: usize = 64;
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                for c in c0..(c0 + TILE).min(cols) {
                    out[c * rows + r] = a[r * cols + c];
                }
            }
        }
    }
    out
}

/// The inverse of a symmetric positive-definite `n × n` matrix, by recursive block inversion
/// (the Schur complement of the leading block is again SPD): about `(4/3)·n³` flops, all but
/// the small diagonal blocks in matrix products. Peak memory about 2.5 `n²` floats beside the
/// input (which is consumed). `None` when a pivot is not positive (not SPD).
pub fn spd_inverse(a: Vec<f32>, n: usize) -> Option<Vec<f32>> {
    assert_eq!(a.len(), n * n, "matrix shape");
    if n <= DIRECT {
        return direct_inverse(&a, n);
    }
    let h = n / 2;
    let m = n - h;
    // [A B; Bᵀ D] with A h × h, B h × m, D m × m.
    let mut a11 = Vec::with_capacity(h * h);
    let mut b = Vec::with_capacity(h * m);
    for row in a.chunks_exact(n).take(h) {
        a11.extend_from_slice(&row[..h]);
        b.extend_from_slice(&row[h..]);
    }
    let mut d = Vec::with_capacity(m * m);
    for row in a.chunks_exact(n).skip(h) {
        d.extend_from_slice(&row[h..]);
    }
    drop(a);
    let a_inv = spd_inverse(a11, h)?;
    // T = A⁻¹B (h × m); S = D − BᵀT (m × m).
    let t = matmul(&a_inv, h, h, &b, m);
    let bt = transpose(&b, h, m);
    drop(b);
    let btt = matmul(&bt, m, h, &t, m);
    drop(bt);
    for (s, x) in d.iter_mut().zip(&btt) {
        *s -= x;
    }
    drop(btt);
    // Symmetrise against rounding before recursing.
    for i in 0..m {
        for j in i + 1..m {
            let mean = 0.5 * (d[i * m + j] + d[j * m + i]);
            d[i * m + j] = mean;
            d[j * m + i] = mean;
        }
    }
    let s_inv = spd_inverse(d, m)?;
    // P12 = −T S⁻¹; P11 = A⁻¹ − P12 Tᵀ; P22 = S⁻¹.
    let mut p12 = matmul(&t, h, m, &s_inv, m);
    for x in &mut p12 {
        *x = -*x;
    }
    let tt = transpose(&t, h, m);
    drop(t);
    let correction = matmul(&p12, h, m, &tt, h);
    drop(tt);
    let mut out = vec![0.0; n * n];
    for i in 0..h {
        let row = &mut out[i * n..(i + 1) * n];
        for (j, value) in row[..h].iter_mut().enumerate() {
            *value = a_inv[i * h + j] - correction[i * h + j];
        }
        row[h..].copy_from_slice(&p12[i * m..(i + 1) * m]);
    }
    drop(a_inv);
    drop(correction);
    for i in 0..m {
        let row = &mut out[(h + i) * n..(h + i + 1) * n];
        for (j, value) in row[..h].iter_mut().enumerate() {
            *value = p12[j * m + i];
        }
        row[h..].copy_from_slice(&s_inv[i * m..(i + 1) * m]);
    }
    Some(out)
}

/// Gauss–Jordan without pivoting (an SPD matrix needs none), in `f64`.
fn direct_inverse(a: &[f32], n: usize) -> Option<Vec<f32>> {
    let mut m: Vec<f64> = a.iter().map(|&x| f64::from(x)).collect();
    let mut inv = vec![0.0f64; n * n];
    for i in 0..n {
        inv[i * n + i] = 1.0;
    }
    for col in 0..n {
        let pivot = m[col * n + col];
        if !(pivot > 0.0 && pivot.is_finite()) {
            return None;
        }
        let scale = 1.0 / pivot;
        for j in 0..n {
            m[col * n + j] *= scale;
            inv[col * n + j] *= scale;
        }
        for row in 0..n {
            if row == col {
                continue;
            }
            let factor = m[row * n + col];
            if factor == 0.0 {
                continue;
            }
            for j in 0..n {
                m[row * n + j] -= factor * m[col * n + j];
                inv[row * n + j] -= factor * inv[col * n + j];
            }
        }
    }
    Some(inv.into_iter().map(|x| x as f32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A random SPD matrix: `XᵀX + λI` of a random 0/1 `rows × n` matrix.
    fn gram(n: usize, rows: usize, lambda: f32, seed: u64) -> Vec<f32> {
        let mut state = seed;
        let mut x = vec![0.0f32; rows * n];
        for v in &mut x {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *v = f32::from(u8::from((state >> 33).is_multiple_of(7)));
        }
        let xt = transpose(&x, rows, n);
        let mut g = matmul(&xt, n, rows, &x, n);
        for i in 0..n {
            g[i * n + i] += lambda;
        }
        g
    }

    fn max_error_of_product_with_inverse(n: usize) -> f32 {
        let g = gram(n, 3 * n, 5.0, n as u64);
        let inverse = spd_inverse(g.clone(), n).expect("SPD");
        let product = matmul(&g, n, n, &inverse, n);
        let mut worst = 0.0f32;
        for i in 0..n {
            for j in 0..n {
                let expected = if i == j { 1.0 } else { 0.0 };
                worst = worst.max((product[i * n + j] - expected).abs());
            }
        }
        worst
    }

    #[test]
    fn products_match_by_hand() {
        // [1 2 3; 4 5 6] · [1 0; 0 1; 1 1] = [4 5; 10 11]
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        assert_eq!(matmul(&a, 2, 3, &b, 2), vec![4.0, 5.0, 10.0, 11.0]);
        assert_eq!(transpose(&a, 2, 3), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }

    #[test]
    fn small_and_blocked_inverses_invert() {
        // By hand: [2 1; 1 2]⁻¹ = [2 −1; −1 2] / 3.
        let inverse = spd_inverse(vec![2.0, 1.0, 1.0, 2.0], 2).unwrap();
        for (got, want) in inverse
            .iter()
            .zip([2.0 / 3.0, -1.0 / 3.0, -1.0 / 3.0, 2.0 / 3.0])
        {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
        assert!(max_error_of_product_with_inverse(100) < 1e-4);
        // Above DIRECT: two levels of blocks, odd sizes.
        assert!(max_error_of_product_with_inverse(601) < 1e-3);
    }

    #[test]
    fn a_matrix_that_is_not_positive_definite_is_refused() {
        assert!(spd_inverse(vec![0.0, 1.0, 1.0, 0.0], 2).is_none());
    }
}
