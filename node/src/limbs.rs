//! Wider activations, exactly: X = Σᵢ 2^(8i)·Xᵢ with signed byte limbs Xᵢ, proven as extra
//! right-hand columns `[X₀ | X₁ | …]` (an ordinary job: k × (n·L)), and recombined as integers
//! by whoever verifies the result: Y = Σᵢ 2^(8i)·Yᵢ. Each limb is small, so each limb product
//! stays inside the field's exact bound where W·X itself would not (int16 activations against
//! int8 weights at k = 4096).

use starkscale_protocol::IntMatrix;

/// The most limbs a job is split into (X entries are at most 32 bits).
pub const MAX_LIMBS: usize = 4;

/// Splits `x` (k × n) into `limbs` signed base-256 limbs side by side: column `i·n + j` of
/// the result is limb `i` of column `j`. Every limb but the last is in −128..=127; the last
/// takes what remains. `limbs == 1` returns `x` unchanged.
pub fn split(x: &IntMatrix, limbs: usize) -> IntMatrix {
    let (k, n) = (x.rows(), x.cols());
    let limbs = limbs.max(1);
    let mut out = vec![0i64; k * n * limbs];
    for r in 0..k {
        for j in 0..n {
            // In i128: no intermediate overflows, whatever the entry.
            let mut rest = i128::from(x.data()[r * n + j]);
            for i in 0..limbs {
                let digit = if i + 1 == limbs {
                    rest
                } else {
                    (rest + 128).rem_euclid(256) - 128
                };
                // Every digit but the last is a byte; the last is at most |x| / 256^(L-1).
                out[r * n * limbs + i * n + j] = digit as i64;
                rest = (rest - digit) / 256;
            }
        }
    }
    IntMatrix::new(k, n * limbs, out).expect("the shape is k × n·limbs by construction")
}

/// Recombines a product of limbs (m × n·L, as [`split`] lays them out) into the product of the
/// original X: `Y[r][j] = Σᵢ 2^(8i)·Y'[r][i·n + j]`, in exact integers.
pub fn join(y: &IntMatrix, n: usize, limbs: usize) -> anyhow::Result<IntMatrix> {
    let limbs = limbs.max(1);
    if n == 0 || y.cols() != n * limbs {
        anyhow::bail!(
            "a result of {} columns is not {limbs} limb(s) of {n} column(s)",
            y.cols()
        );
    }
    let m = y.rows();
    let mut out = Vec::with_capacity(m * n);
    for r in 0..m {
        let row = &y.data()[r * n * limbs..(r + 1) * n * limbs];
        for j in 0..n {
            let mut acc: i128 = 0;
            for i in (0..limbs).rev() {
                acc = acc * 256 + i128::from(row[i * n + j]);
            }
            out.push(i64::try_from(acc).map_err(|_| {
                anyhow::anyhow!("recombined entry ({r}, {j}) = {acc} does not fit 64 bits")
            })?);
        }
    }
    Ok(IntMatrix::new(m, n, out)?)
}

/// The fewest limbs that make a `k`-deep product against weights bounded by `w_bound` exact
/// for this X, or an error that gives the bound and the values.
pub fn needed(k: usize, w_bound: u64, x: &IntMatrix) -> anyhow::Result<usize> {
    let mut last = None;
    for limbs in 1..=MAX_LIMBS {
        let max = if limbs == 1 {
            x.max_abs()
        } else {
            split(x, limbs).max_abs()
        };
        match starkscale_prover::check_exact(k, w_bound, max) {
            Ok(_) => return Ok(limbs),
            Err(e) => last = Some(e),
        }
    }
    let e = last.expect("at least one limb count was tried");
    anyhow::bail!(
        "not exact even split into {MAX_LIMBS} byte limbs: {e} (weights up to {w_bound}, |X| up to {}); use smaller weights or a smaller inner dimension",
        x.max_abs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(w: &IntMatrix, x: &IntMatrix) -> IntMatrix {
        w.checked_mul(x).unwrap()
    }

    #[test]
    fn split_then_join_is_the_identity_on_products() {
        let w = IntMatrix::new(2, 3, vec![1, -2, 3, 127, -128, 5]).unwrap();
        let x = IntMatrix::new(3, 2, vec![32767, -32768, -1, 255, 128, -129]).unwrap();
        for limbs in 1..=MAX_LIMBS {
            let xs = split(&x, limbs);
            assert_eq!(xs.cols(), 2 * limbs);
            if limbs > 1 {
                // Every limb but the last is a signed byte.
                for r in 0..3 {
                    for c in 0..2 * (limbs - 1) {
                        let v = xs.get(r, c).unwrap();
                        assert!((-128..=127).contains(&v), "{v}");
                    }
                }
            }
            let y = join(&product(&w, &xs), 2, limbs).unwrap();
            assert_eq!(y, product(&w, &x), "{limbs} limbs");
        }
    }

    #[test]
    fn int16_activations_at_k_4096_need_two_limbs() {
        let x = IntMatrix::new(4096, 1, vec![-32768; 4096]).unwrap();
        // int8 weights: 127 · 32768 · 4096 ≈ 1.7·10¹⁰ is over the bound; limbs of ≤ 128 are not.
        assert_eq!(needed(4096, 127, &x).unwrap(), 2);
        let small = IntMatrix::new(4096, 1, vec![100; 4096]).unwrap();
        assert_eq!(needed(4096, 127, &small).unwrap(), 1);
    }

    #[test]
    fn what_cannot_be_exact_is_refused_with_the_values() {
        // Weights of 2^28 at k = 4096: even byte limbs overflow.
        let x = IntMatrix::new(4096, 1, vec![1000; 4096]).unwrap();
        let err = needed(4096, 1 << 28, &x).unwrap_err().to_string();
        assert!(err.contains("268435456") && err.contains("1000"), "{err}");
    }

    #[test]
    fn extreme_entries_split_without_overflow() {
        let x = IntMatrix::new(2, 1, vec![i64::MAX, i64::MIN]).unwrap();
        for limbs in 1..=MAX_LIMBS {
            let xs = split(&x, limbs);
            for r in 0..2 {
                let mut acc: i128 = 0;
                for i in (0..limbs).rev() {
                    acc = acc * 256 + i128::from(xs.get(r, i).unwrap());
                }
                assert_eq!(acc, i128::from(x.get(r, 0).unwrap()));
            }
        }
    }

    #[test]
    fn a_result_of_the_wrong_width_is_refused() {
        let y = IntMatrix::new(1, 3, vec![1, 2, 3]).unwrap();
        assert!(join(&y, 2, 2).is_err());
    }
}
