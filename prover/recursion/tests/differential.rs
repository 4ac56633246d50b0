//! Recursion part 2, differential: the circuit accepts exactly what the native verifier
//! accepts. A seeded campaign mutates real shard proofs of several shapes (matvec, Freivalds,
//! padded, a short last shard, one FRI round of each arity) in every part of the proof and of
//! the statement, and for each checks that a circuit proof can be made (by a prover handing the
//! circuit the lenient witness of the mutated proof, against the layout the circuit's verifier
//! derives from the statement) if and only if `starkscale_prover::verify` accepts.
//!
//! CI runs a small campaign; `DIFFERENTIAL_MUTATIONS=1000 cargo test --release -p
//! starkscale-recursion --test differential -- --nocapture` runs the full count and prints the
//! table in the README (`DIFFERENTIAL_SEED` picks another seeded campaign).

#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeMap;

use p3_field::{BasedVectorSpace, PrimeCharacteristicRing, PrimeField32};
use p3_symmetric::MerkleCap;
use p3_uni_stark::Proof;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use starkscale_prover::codec::{decode, encode, MAX_PROOF_BYTES};
use starkscale_prover::config::{Challenge, ShardStarkConfig, Val};
use starkscale_prover::{
    prove, prove_output, setup, verify, Binding, IntMatrix, ShardProof, VerifyingKey,
};
use starkscale_recursion::{circuit, verifier};

/// One statement and a proof of it (or of a mutation of it).
struct Case {
    vk: VerifyingKey,
    x: IntMatrix,
    y: IntMatrix,
    binding: Binding,
    proof: ShardProof,
}

fn matrix(rows: usize, cols: usize, seed: i64, modulus: i64) -> IntMatrix {
    let data = (0..(rows * cols) as i64)
        .map(|i| (i * 31 + seed * 17) % modulus - modulus / 2)
        .collect();
    IntMatrix::new(rows, cols, data).unwrap()
}

/// The shapes: (rows, k, n). 8 rows pad to the minimum height; 100 rows pad to 128 (one round
/// of arity 4); 300 rows pad to 512 (rounds of arity 8 then 2); n = 7 is a Freivalds proof; 37
/// rows is a short last shard.
const SHAPES: [(usize, usize, usize); 5] = [
    (8, 20, 1),
    (100, 9, 1),
    (300, 5, 2),
    (64, 12, 7),
    (37, 16, 3),
];

fn case(shape: usize) -> Case {
    let (rows, k, n) = SHAPES[shape];
    let w = matrix(rows, k, shape as i64, 9);
    let x = matrix(k, n, shape as i64 + 3, 7);
    let pk = setup(&w).unwrap();
    let binding = Binding {
        job_id: [shape as u8 + 1; 32],
        shard_index: shape as u32,
        worker: [9; 32],
    };
    let proven = prove(&pk, &x, &binding).unwrap();
    Case {
        vk: pk.verifying_key().clone(),
        x,
        y: proven.output,
        binding,
        proof: proven.proof,
    }
}

/// A proof of a false statement, made by a prover: Y with one entry off by one, proved as if
/// it were the product (every commitment and opening is genuine; the constraints do not hold).
fn false_statement(shape: usize) -> Case {
    let (rows, k, n) = SHAPES[shape];
    let w = matrix(rows, k, shape as i64, 9);
    let x = matrix(k, n, shape as i64 + 3, 7);
    let pk = setup(&w).unwrap();
    let honest = case(shape);
    let mut data = honest.y.data().to_vec();
    data[0] += 1;
    let y = IntMatrix::new(rows, n, data).unwrap();
    let proof = prove_output(&pk, &x, &y, &honest.binding).unwrap();
    Case { y, proof, ..honest }
}

impl Clone for Case {
    fn clone(&self) -> Self {
        Self {
            vk: self.vk.clone(),
            x: self.x.clone(),
            y: self.y.clone(),
            binding: self.binding,
            proof: ShardProof::from_bytes(&self.proof.to_bytes()).unwrap(),
        }
    }
}

fn native_accepts(c: &Case) -> bool {
    verify(&c.vk, &c.x, &c.y, &c.binding, &c.proof).is_ok()
}

/// Where the circuit path stopped: `Ok(())` if a circuit proof was made and verified against
/// the layout the circuit's verifier derives from the statement, else the stage that refused
/// ("statement": the verifier derives no layout, "witness": no witness of the right shape
/// exists for the proof's data, "prove" / "verify": the circuit refused it).
fn circuit_verdict(c: &Case) -> Result<(), &'static str> {
    let layout = verifier::layout_for(&c.vk, &c.x, &c.y, &c.binding).map_err(|_| "statement")?;
    let (_, witness, _) = verifier::shard_circuit_lenient(&c.vk, &c.x, &c.y, &c.binding, &c.proof)
        .map_err(|_| "witness")?;
    let w = verifier::witness_lenient(&[(layout.clone(), witness)]).map_err(|_| "witness")?;
    let proof = circuit::prove(&w).map_err(|_| "prove")?;
    let layouts = [layout];
    circuit::verify(
        &verifier::tables(&layouts).unwrap(),
        &verifier::public_values(&layouts),
        &proof,
    )
    .map_err(|_| "verify")
}

type Inner = Proof<ShardStarkConfig>;

fn open(proof: &ShardProof) -> (u32, Inner) {
    decode::<(u32, Inner), MAX_PROOF_BYTES>("proof", &proof.to_bytes()).unwrap()
}

fn close(config: u32, inner: &Inner) -> ShardProof {
    ShardProof::from_bytes(&encode(&(config, inner))).unwrap()
}

fn nonzero(rng: &mut StdRng) -> Val {
    Val::new(rng.gen_range(1..0x7f00_0000))
}

fn bump_cap(cap: &MerkleCap<Val, [Val; 8]>, rng: &mut StdRng) -> MerkleCap<Val, [Val; 8]> {
    let mut root = cap.roots()[0];
    root[rng.gen_range(0..8)] += nonzero(rng);
    MerkleCap::from(vec![root])
}

fn bump_ext(v: &mut Challenge, rng: &mut StdRng) {
    let c = rng.gen_range(0..4);
    *v += Challenge::from_basis_coefficients_fn(|i| if i == c { nonzero(rng) } else { Val::ZERO });
}

fn pick<'a, T>(v: &'a mut [T], rng: &mut StdRng) -> Option<&'a mut T> {
    if v.is_empty() {
        return None;
    }
    let i = rng.gen_range(0..v.len());
    v.get_mut(i)
}

const KINDS: [&str; 17] = [
    "trace commitment",
    "quotient commitment",
    "main trace value at ζ",
    "quotient value at ζ",
    "preprocessed value at ζ",
    "input leaf value",
    "input Merkle sibling",
    "FRI commitment",
    "FRI leaf (sibling) value",
    "FRI Merkle sibling",
    "final polynomial",
    "proof-of-work witness",
    "statement: X",
    "statement: Y",
    "statement: commitment",
    "statement: binding",
    "degree bits",
];

/// Applies mutation `kind` to `c`; `None` when the proof has no such part (no FRI round).
fn mutate(c: &Case, kind: usize, rng: &mut StdRng) -> Option<Case> {
    let mut m = c.clone();
    let (config, mut p) = open(&c.proof);
    let fri = &mut p.opening_proof;
    match kind {
        0 => p.commitments.trace = bump_cap(&p.commitments.trace, rng),
        1 => p.commitments.quotient_chunks = bump_cap(&p.commitments.quotient_chunks, rng),
        2 => bump_ext(pick(&mut p.opened_values.trace_local, rng)?, rng),
        3 => bump_ext(
            pick(pick(&mut p.opened_values.quotient_chunks, rng)?, rng)?,
            rng,
        ),
        4 => bump_ext(
            pick(&mut p.opened_values.preprocessed.as_mut()?.local, rng)?,
            rng,
        ),
        5 => {
            let batch = pick(&mut fri.input_openings, rng)?;
            let query = pick(&mut batch.opened_values, rng)?;
            *pick(pick(query, rng)?, rng)? += nonzero(rng);
        }
        6 => {
            let batch = pick(&mut fri.input_openings, rng)?;
            pick(&mut batch.opening_proof.sibling_hashes, rng)?[rng.gen_range(0..8)] +=
                nonzero(rng);
        }
        7 => {
            let r = rng.gen_range(0..fri.commit_phase_commits.len().max(1));
            let commit = fri.commit_phase_commits.get_mut(r)?;
            *commit = bump_cap(commit, rng);
        }
        8 => {
            let step = pick(&mut fri.commit_phase_openings, rng)?;
            bump_ext(pick(pick(&mut step.sibling_values, rng)?, rng)?, rng);
        }
        9 => {
            let step = pick(&mut fri.commit_phase_openings, rng)?;
            pick(&mut step.opening_proof.sibling_hashes, rng)?[rng.gen_range(0..8)] += nonzero(rng);
        }
        10 => bump_ext(pick(&mut fri.final_poly, rng)?, rng),
        11 => match rng.gen_range(0..3) {
            0 => fri.query_pow_witness += nonzero(rng),
            1 => fri.batch_pow_witness += nonzero(rng),
            _ => p.ood_pow_witness += nonzero(rng),
        },
        12 => {
            let mut data = c.x.data().to_vec();
            *pick(&mut data, rng)? += if rng.gen() { 1 } else { -1 };
            m.x = IntMatrix::new(c.x.rows(), c.x.cols(), data).unwrap();
        }
        13 => {
            let mut data = c.y.data().to_vec();
            *pick(&mut data, rng)? += 1;
            m.y = IntMatrix::new(c.y.rows(), c.y.cols(), data).unwrap();
        }
        14 => {
            let limb = pick(&mut m.vk.commitment, rng)?;
            *limb = (Val::new(*limb) + nonzero(rng)).as_canonical_u32();
        }
        15 => match rng.gen_range(0..3) {
            0 => m.binding.job_id[rng.gen_range(0..32)] ^= 1 << rng.gen_range(0..8),
            1 => m.binding.shard_index += 1,
            _ => m.binding.worker[rng.gen_range(0..32)] ^= 1 << rng.gen_range(0..8),
        },
        _ => p.degree_bits += 1,
    }
    m.proof = close(config, &p);
    Some(m)
}

#[test]
fn the_circuit_accepts_exactly_what_the_native_verifier_accepts() {
    let total: usize = std::env::var("DIFFERENTIAL_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2 * KINDS.len());
    let seed: u64 = std::env::var("DIFFERENTIAL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed);
    let mut rng = StdRng::seed_from_u64(seed);
    let cases: Vec<Case> = (0..SHAPES.len()).map(case).collect();
    // (kind, native accepts, circuit verdict) → count.
    let mut table: BTreeMap<(&str, bool, &str), usize> = BTreeMap::new();
    let mut disagreements = Vec::new();
    let mut check = |what: &'static str, shape: usize, c: &Case| {
        let verdict = circuit_verdict(c);
        let (native, circuit) = (native_accepts(c), verdict.is_ok());
        let stage = verdict.err().unwrap_or("accepted");
        *table.entry((what, native, stage)).or_default() += 1;
        if native != circuit {
            disagreements.push(format!(
                "{what} on shape {:?}: native {native}, circuit {circuit}",
                SHAPES[shape]
            ));
        }
    };
    for (shape, c) in cases.iter().enumerate() {
        check("honest proof", shape, c);
        check("proof of a false Y", shape, &false_statement(shape));
    }
    let mut done = 0;
    while done < total {
        let (shape, kind) = (done % SHAPES.len(), rng.gen_range(0..KINDS.len()));
        if let Some(m) = mutate(&cases[shape], kind, &mut rng) {
            check(KINDS[kind], shape, &m);
            done += 1;
        }
    }
    println!("| mutation | native verifier | circuit | count |");
    println!("| --- | --- | --- | --- |");
    for ((what, native, stage), n) in &table {
        let native = if *native { "accepts" } else { "rejects" };
        let circuit = match *stage {
            "accepted" => "accepts".to_string(),
            stage => format!("refuses ({stage})"),
        };
        println!("| {what} | {native} | {circuit} | {n} |");
    }
    println!("{done} mutations, {} disagreements", disagreements.len());
    assert!(disagreements.is_empty(), "{disagreements:#?}");
    // The campaign is not vacuous: honest proofs are accepted by both.
    assert_eq!(
        table.get(&("honest proof", true, "accepted")),
        Some(&SHAPES.len())
    );
}
