//! Honest proofs verify for every shard shape; every public input and binding value is bound;
//! malformed bytes and out-of-range jobs are refused without panicking.

#![allow(clippy::unwrap_used)]
use starkscale_prover::{
    prove, setup, verify, Binding, IntMatrix, ProverError, ShardProof, VerifyError, VerifyingKey,
    HALF_MODULUS,
};

const SEED_MATRIX: [[i64; 10]; 10] = include!("../../tests/data/seed_matrix.in");
const SEED_VECTOR: [i64; 10] = include!("../../tests/data/seed_vector.in");
const SEED_PRODUCT: [i64; 10] = [2058, 1690, 3369, 2923, 2018, 2887, 2489, 2410, 2179, 2632];

fn binding() -> Binding {
    Binding {
        job_id: [0xab; 32],
        shard_index: 2,
        worker: [0x5c; 32],
    }
}

/// Deterministic pseudo-random signed matrix with entries in [-bound, bound].
fn matrix(rows: usize, cols: usize, bound: i64, seed: u64) -> IntMatrix {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let data = (0..rows * cols)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % (2 * bound as u64 + 1)) as i64 - bound
        })
        .collect();
    IntMatrix::new(rows, cols, data).unwrap()
}

fn roundtrip(proof: &ShardProof) -> ShardProof {
    ShardProof::from_bytes(&proof.to_bytes()).unwrap()
}

fn prove_and_check(w: &IntMatrix, x: &IntMatrix) -> (VerifyingKey, IntMatrix, ShardProof) {
    let pk = setup(w).unwrap();
    let proven = prove(&pk, x, &binding()).unwrap();
    assert_eq!(
        proven.output,
        w.matmul(x).unwrap(),
        "prover output is not the exact product"
    );
    let proof = roundtrip(&proven.proof);
    verify(pk.verifying_key(), x, &proven.output, &binding(), &proof).unwrap();
    (pk.verifying_key().clone(), proven.output, proof)
}

#[test]
fn seed_job_proves_the_known_product() {
    let w = IntMatrix::new(10, 10, SEED_MATRIX.iter().flatten().copied().collect()).unwrap();
    let x = IntMatrix::column_vector(SEED_VECTOR.to_vec());
    let (_, y, _) = prove_and_check(&w, &x);
    assert_eq!(y.data(), &SEED_PRODUCT);
}

#[test]
fn honest_proofs_verify_for_every_shape() {
    let shapes = [
        (16, 16, 1), // square, power of two
        (7, 13, 1),  // non-square, neither a power of two
        (5, 3, 2),   // padded rows, two right-hand columns
        (1, 1, 1),   // 1 × 1
        (1, 40, 1),  // a single row
        (33, 8, 4),  // just past a power of two, the largest direct batch
        (6, 9, 12),  // matrix × matrix through Freivalds
    ];
    for (i, (m, k, n)) in shapes.into_iter().enumerate() {
        let w = matrix(m, k, 127, i as u64 + 1);
        let x = matrix(k, n, 127, i as u64 + 100);
        prove_and_check(&w, &x);
    }
}

#[test]
fn shards_of_a_job_with_a_short_last_shard_reassemble_the_product() {
    let w = matrix(10, 12, 100, 7);
    let x = matrix(12, 1, 100, 8);
    let mut rows = Vec::new();
    for (index, start) in (0..10).step_by(4).enumerate() {
        let shard = w.row_block(start, (start + 4).min(10)).unwrap();
        let pk = setup(&shard).unwrap();
        let b = Binding {
            shard_index: index as u32,
            ..binding()
        };
        let proven = prove(&pk, &x, &b).unwrap();
        verify(pk.verifying_key(), &x, &proven.output, &b, &proven.proof).unwrap();
        rows.extend_from_slice(proven.output.data());
    }
    assert_eq!(rows, w.matmul(&x).unwrap().data());
}

fn with_entry(m: &IntMatrix, index: usize, delta: i64) -> IntMatrix {
    let mut data = m.data().to_vec();
    data[index] += delta;
    IntMatrix::new(m.rows(), m.cols(), data).unwrap()
}

fn assert_invalid(result: Result<(), VerifyError>, what: &str) {
    match result {
        Err(VerifyError::Invalid(_)) => {}
        other => panic!("{what}: expected a STARK rejection, got {other:?}"),
    }
}

/// Every public input and every binding value, changed alone, makes verification fail.
#[test]
fn tampering_with_any_public_input_fails() {
    for n in [1, 3, 9] {
        let w = matrix(6, 5, 50, 11);
        let x = matrix(5, n, 50, 12);
        let (vk, y, proof) = prove_and_check(&w, &x);
        let b = binding();
        for i in [0, y.data().len() - 1] {
            assert_invalid(
                verify(&vk, &x, &with_entry(&y, i, 1), &b, &proof),
                "changed Y entry",
            );
        }
        for i in [0, x.data().len() - 1] {
            assert_invalid(
                verify(&vk, &with_entry(&x, i, -1), &y, &b, &proof),
                "changed X entry",
            );
        }
        let other_w = with_entry(&w, 3, 1);
        let other_vk = setup(&other_w).unwrap().verifying_key().clone();
        assert_ne!(other_vk.commitment, vk.commitment);
        assert_invalid(verify(&other_vk, &x, &y, &b, &proof), "other commitment");
        let mut job = b;
        job.job_id[31] ^= 1;
        assert_invalid(verify(&vk, &x, &y, &job, &proof), "other job id");
        let shard = Binding {
            shard_index: b.shard_index + 1,
            ..b
        };
        assert_invalid(verify(&vk, &x, &y, &shard, &proof), "other shard index");
        let mut worker = b;
        worker.worker[0] ^= 0x80;
        assert_invalid(verify(&vk, &x, &y, &worker, &proof), "other worker key");
        let bound = VerifyingKey {
            weight_bound: vk.weight_bound + 1,
            ..vk.clone()
        };
        assert_invalid(verify(&bound, &x, &y, &b, &proof), "other weight bound");
    }
}

#[test]
fn a_proof_under_another_configuration_is_refused() {
    let w = matrix(4, 4, 9, 1);
    let x = matrix(4, 1, 9, 2);
    let (vk, y, mut proof) = prove_and_check(&w, &x);
    proof.config_id += 1;
    assert!(matches!(
        verify(&vk, &x, &y, &binding(), &proof),
        Err(VerifyError::WrongConfig { .. })
    ));
    let other = VerifyingKey {
        config_id: vk.config_id + 1,
        ..vk.clone()
    };
    let proof = roundtrip(&{
        let mut p = proof;
        p.config_id -= 1;
        p
    });
    assert!(matches!(
        verify(&other, &x, &y, &binding(), &proof),
        Err(VerifyError::WrongConfig { .. })
    ));
}

#[test]
fn a_proof_for_one_shard_does_not_verify_for_another_shard_of_the_same_job() {
    let w = matrix(8, 6, 30, 5);
    let x = matrix(6, 1, 30, 6);
    let (a, b) = (w.row_block(0, 4).unwrap(), w.row_block(4, 8).unwrap());
    let (vk_a, y_a, proof_a) = prove_and_check(&a, &x);
    let (vk_b, y_b, _) = prove_and_check(&b, &x);
    assert_invalid(
        verify(&vk_b, &x, &y_b, &binding(), &proof_a),
        "proof of shard a for shard b",
    );
    assert_invalid(
        verify(&vk_b, &x, &y_a, &binding(), &proof_a),
        "shard a's output under b's key",
    );
    verify(&vk_a, &x, &y_a, &binding(), &proof_a).unwrap();
}

#[test]
fn truncated_and_bit_flipped_proofs_are_rejected_without_panic() {
    let w = matrix(8, 8, 20, 3);
    let x = matrix(8, 1, 20, 4);
    let (vk, y, proof) = prove_and_check(&w, &x);
    let bytes = proof.to_bytes();
    let check = |bytes: &[u8]| match ShardProof::from_bytes(bytes) {
        Err(_) => true,
        Ok(p) => verify(&vk, &x, &y, &binding(), &p).is_err(),
    };
    for len in [0, 1, bytes.len() / 3, bytes.len() / 2, bytes.len() - 1] {
        assert!(check(&bytes[..len]), "truncated to {len} bytes accepted");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(check(&longer), "trailing byte accepted");
    // Flip bits spread over the whole proof: headers, commitments, openings, FRI data.
    let step = (bytes.len() / 97).max(1);
    for pos in (0..bytes.len()).step_by(step) {
        for bit in [0, 3, 7] {
            let mut flipped = bytes.clone();
            flipped[pos] ^= 1 << bit;
            assert!(
                check(&flipped),
                "bit {bit} of byte {pos} flipped and accepted"
            );
        }
    }
}

#[test]
fn oversized_and_garbage_bytes_are_refused_by_the_decoders() {
    let huge = vec![0u8; starkscale_prover::codec::MAX_PROOF_BYTES + 1];
    assert!(ShardProof::from_bytes(&huge).is_err());
    assert!(ShardProof::from_bytes(&[0xff; 64]).is_err());
    assert!(VerifyingKey::from_bytes(&[0xff; 64]).is_err());
    assert!(VerifyingKey::from_bytes(&vec![1u8; 4096]).is_err());
    let vk = setup(&matrix(2, 2, 3, 1)).unwrap().verifying_key().clone();
    assert_eq!(VerifyingKey::from_bytes(&vk.to_bytes()).unwrap(), vk);
}

#[test]
fn jobs_that_could_wrap_the_field_are_refused_with_the_bound_named() {
    // 127 · 300 · 2^15 ≈ 1.25e9 > (p-1)/2 ≈ 1.07e9.
    let k = starkscale_prover::shard::MAX_K;
    let w = IntMatrix::new(1, k, vec![127; k]).unwrap();
    let x = IntMatrix::column_vector(vec![-300; k]);
    let pk = setup(&w).unwrap();
    let err = prove(&pk, &x, &binding()).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, ProverError::Overflow(_)), "{message}");
    assert!(
        message.contains(&HALF_MODULUS.to_string()),
        "bound not named: {message}"
    );
    assert!(
        message.contains("127") && message.contains("300"),
        "values not named: {message}"
    );
    // The verifier refuses the same statement without looking at the proof.
    let honest_x = IntMatrix::column_vector(vec![1; k]);
    let proven = prove(&pk, &honest_x, &binding()).unwrap();
    assert!(matches!(
        verify(
            pk.verifying_key(),
            &x,
            &proven.output,
            &binding(),
            &proven.proof
        ),
        Err(VerifyError::Overflow(_))
    ));
    // A weight that is not itself an exact field value is refused at setup.
    let big = IntMatrix::new(1, 1, vec![HALF_MODULUS as i64 + 1]).unwrap();
    assert!(matches!(setup(&big), Err(ProverError::Overflow(_))));
}

#[test]
fn outputs_outside_the_exact_range_are_refused() {
    let w = matrix(3, 3, 5, 9);
    let x = matrix(3, 1, 5, 10);
    let (vk, y, proof) = prove_and_check(&w, &x);
    // y + p is congruent to y: the field alone cannot tell them apart, the range check must.
    let wrapped = with_entry(&y, 0, starkscale_prover::statement::MODULUS as i64);
    assert!(matches!(
        verify(&vk, &x, &wrapped, &binding(), &proof),
        Err(VerifyError::OutputOutOfRange { row: 0, col: 0, .. })
    ));
}

#[test]
fn empty_and_mismatched_inputs_are_clear_errors() {
    assert!(matches!(
        setup(&IntMatrix::new(0, 3, vec![]).unwrap()),
        Err(ProverError::Shape { .. })
    ));
    let pk = setup(&matrix(2, 3, 5, 1)).unwrap();
    let err = prove(&pk, &matrix(4, 1, 5, 2), &binding()).unwrap_err();
    assert!(err.to_string().contains("needs 3 × n"), "{err}");
    assert!(IntMatrix::new(2, 2, vec![1, 2, 3]).is_err());
}

#[test]
fn verifying_keys_rebuild_from_their_published_parts() {
    let pk = setup(&matrix(5, 7, 9, 3)).unwrap();
    let vk = pk.verifying_key();
    let rebuilt = VerifyingKey::from_parts(5, 7, vk.weight_bound, vk.commitment_bytes()).unwrap();
    assert_eq!(&rebuilt, vk);
    assert!(VerifyingKey::from_parts(0, 7, 1, vk.commitment_bytes()).is_err());
    assert!(VerifyingKey::from_parts(5, 7, 1, [0xff; 32]).is_err());
}
