//! Recursion part 1 on real shard proofs: one circuit recomputes the proof's whole
//! Fiat–Shamir transcript and re-hashes every Merkle opening it contains to the committed
//! roots, at the leaves the query indices select. Changing any sibling, opened value,
//! commitment root or public value makes the circuit fail, and so does corrupting any
//! table's constraints or any bus.

#![allow(clippy::unwrap_used, missing_docs)]

use p3_field::PrimeCharacteristicRing;
use starkscale_prover::config::Val;
use starkscale_prover::{prove, setup, Binding, IntMatrix};
use starkscale_recursion::circuit;
use starkscale_recursion::tables::ext::{Read, Ref};
use starkscale_recursion::tables::index::Check;
use starkscale_recursion::verifier::{self, ShardLayout, ShardWitness};

fn shard(rows: usize, k: usize, n: usize, seed: i64) -> (ShardLayout, ShardWitness) {
    let w = IntMatrix::new(
        rows,
        k,
        (0..(rows * k) as i64)
            .map(|i| (i * 7 + seed) % 9 - 4)
            .collect(),
    )
    .unwrap();
    let x = IntMatrix::new(
        k,
        n,
        (0..(k * n) as i64).map(|i| (i + seed) % 5 - 2).collect(),
    )
    .unwrap();
    let pk = setup(&w).unwrap();
    let binding = Binding {
        job_id: [seed as u8; 32],
        shard_index: 1,
        worker: [3; 32],
    };
    let proven = prove(&pk, &x, &binding).unwrap();
    verifier::shard_circuit(
        pk.verifying_key(),
        &x,
        &proven.output,
        &binding,
        &proven.proof,
    )
    .unwrap()
}

fn accepted(proofs: &[(ShardLayout, ShardWitness)]) -> Result<(), String> {
    // The witness's tables are `verifier::tables` of its layouts: what the verifier builds.
    let w = verifier::witness(proofs).map_err(|e| e.to_string())?;
    w.prove_and_verify().map_err(|e| e.to_string())
}

#[test]
fn honest_shard_proofs_of_several_sizes_pass() {
    for (rows, k, n) in [(8, 6, 1), (100, 33, 1), (300, 5, 2)] {
        let proof = shard(rows, k, n, 1);
        eprintln!(
            "{rows} × {k}, n = {n}: {} calls, {} openings",
            proof.0.steps.len(),
            proof.0.openings.len()
        );
        accepted(&[proof]).unwrap();
    }
}

fn refused(proofs: &[(ShardLayout, ShardWitness)], what: &str) {
    assert!(accepted(proofs).is_err(), "{what} was accepted");
}

#[test]
fn changing_any_sibling_or_opened_value_fails() {
    let honest = shard(8, 6, 2, 2);
    let trees = honest.0.openings.len() / 36;
    // One opening of every tree (trace, quotient, preprocessed, FRI round 0), in two queries.
    for i in (0..trees).chain(17 * trees..18 * trees) {
        let mut p = honest.clone();
        p.1.openings[i].siblings[i % 3][i % 8] += Val::ONE;
        refused(&[p], &format!("a changed sibling in opening {i}"));
        let mut p = honest.clone();
        let values = p.1.openings[i].values.len();
        p.1.openings[i].values[i % values] += Val::ONE;
        refused(&[p], &format!("a changed opened value in opening {i}"));
    }
}

#[test]
fn changing_a_commitment_root_fails() {
    let honest = shard(8, 6, 1, 3);
    let roots: Vec<u32> = honest.0.openings[..honest.0.openings.len() / 36]
        .iter()
        .map(|o| o.root_pos)
        .collect();
    assert_eq!(
        roots.len(),
        4,
        "trace, quotient, preprocessed and one FRI round"
    );
    for (t, pos) in roots.iter().enumerate() {
        // The prover claims another root was absorbed (the witness), or the verifier expects
        // another preprocessed commitment (the layout).
        let mut p = honest.clone();
        p.1.values[*pos as usize + t] += Val::ONE;
        refused(&[p], &format!("a changed root of tree {t}"));
        if let Some(known) = honest.0.steps[*pos as usize].known {
            let mut p = honest.clone();
            p.0.steps[*pos as usize].known = Some(known + Val::ONE);
            refused(&[p], "another verifying key's commitment");
        }
    }
}

#[test]
fn changing_a_public_value_fails() {
    let honest = shard(8, 6, 2, 4);
    let w = verifier::witness(std::slice::from_ref(&honest)).unwrap();
    let proof = circuit::prove(&w).unwrap();
    let range = honest.0.public_range.clone();
    assert_eq!(range.len(), 8 + 2 * 6, "the statement digest, then X");
    for i in [range.start, range.start + 7, range.start + 8, range.end - 1] {
        // The verifier checks the proof against another statement.
        let mut layout = honest.0.clone();
        let v = layout.steps[i].known.unwrap();
        layout.steps[i].known = Some(v + Val::ONE);
        let layouts = [layout];
        assert!(
            circuit::verify(
                &verifier::tables(&layouts).unwrap(),
                &verifier::public_values(&layouts),
                &proof
            )
            .is_err(),
            "public value {i} changed"
        );
        // The prover absorbs another public value.
        let mut p = honest.clone();
        p.1.values[i] += Val::ONE;
        refused(&[p], &format!("absorbed public value {i}"));
    }
    // The honest statement verifies.
    let layouts = [honest.0.clone()];
    circuit::verify(
        &verifier::tables(&layouts).unwrap(),
        &verifier::public_values(&layouts),
        &proof,
    )
    .unwrap();
}

/// Each bus broken on its own: the tables stay self-consistent (the prover builds its traces
/// from the same changed layout), only what one table offers and another reads differs.
#[test]
fn breaking_any_bus_fails() {
    let honest = shard(8, 6, 1, 5);
    // Transcript bus, roots: one root read once more than the openings read it.
    let mut p = honest.clone();
    let root = p.0.openings[0].root_pos as usize;
    p.0.steps[root].sends += 1;
    refused(&[p], "a root offered more often than read");
    // Transcript bus, roots: an opening reads its root at the wrong position.
    let mut p = honest.clone();
    p.0.openings[40].root_pos = p.0.openings[41].root_pos;
    refused(&[p], "an opening ending at another tree's root");
    // Index bus: an opening reads another query's index.
    let mut p = honest.clone();
    p.0.openings[5].index_id = p.0.openings[9].index_id;
    refused(&[p], "an opening at another query's index");
    // Transcript bus, samples: a query index read from another sample.
    let mut p = honest.clone();
    p.0.index_rows[10].pos = p.0.index_rows[11].pos;
    refused(&[p], "a query index from another sample");
    // Transcript bus, ζ: the program reads another challenge.
    let mut p = honest.clone();
    let zeta = p.0.positions.zeta.map(|pos| pos - 4);
    p.0.checks.program.ops[0].t = Some(Read::Ext(zeta));
    refused(&[p], "ζ read from another challenge");

    // Part 2's buses, each broken on one side only.
    // Chunk bus: a DEEP row reads another chunk (the next query's first chunk).
    let mut p = honest.clone();
    let next_query =
        p.0.checks
            .deep
            .iter()
            .position(|r| r.start && r.chunk > 0)
            .unwrap();
    p.0.checks.deep[1].chunk = p.0.checks.deep[next_query].chunk;
    refused(&[p], "a DEEP row reading another query's chunk");
    // Chunk bus: a FRI row folds another query's round leaf.
    let mut p = honest.clone();
    p.0.checks.fri[0].chunk = p.0.checks.fri[1].chunk;
    refused(&[p], "a FRI row folding another query's leaf");
    // Value bus: a FRI row takes s⁻¹ or its position bit from another query.
    let mut p = honest.clone();
    p.0.checks.fri[2].sinv = p.0.checks.fri[3].sinv;
    refused(&[p], "s⁻¹ of another query");
    let mut p = honest.clone();
    p.0.checks.fri[2].bits[0] = p.0.checks.fri[3].bits[0];
    refused(&[p], "a position bit of another query");
    // Value bus: round 0 folds another query's reduced opening.
    let mut p = honest.clone();
    p.0.checks.fri[4].input = p.0.checks.fri[5].input;
    refused(&[p], "another query's reduced opening");
    // Value bus: the program reads another query's S_x, DEEP point or final fold.
    let mut p = honest.clone();
    let copies: Vec<usize> =
        p.0.checks
            .program
            .ops
            .iter()
            .enumerate()
            .filter(|(_, op)| matches!(op.a, Some(Ref::Extern(_))))
            .map(|(i, _)| i)
            .collect();
    // Per query: x, S_x, the final point, the last fold (in that order).
    for (which, what) in [
        (0, "DEEP point"),
        (1, "S_x"),
        (2, "final point"),
        (3, "last fold"),
    ] {
        let mut p = p.clone();
        let (mine, other) = (copies[which], copies[4 + which]);
        p.0.checks.program.ops[mine].a = p.0.checks.program.ops[other].a;
        refused(&[p], &format!("another query's {what}"));
    }
    // Value bus: the index table offers the domain values under another query's ids.
    let query_rows: Vec<usize> =
        p.0.index_rows
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r.check, Check::Query { .. }))
            .map(|(i, _)| i)
            .collect();
    if let (Check::Query { values, .. }, Check::Query { values: other, .. }) = (
        p.0.index_rows[query_rows[0]].check,
        p.0.index_rows[query_rows[1]].check,
    ) {
        assert_ne!(values, other);
        if let Check::Query { values, .. } = &mut p.0.index_rows[query_rows[0]].check {
            *values = other;
        }
    }
    refused(&[p], "domain values offered under another query's ids");
    // Transcript bus: the DEEP table reads α, the FRI table β, at another position.
    let mut p = honest.clone();
    p.0.positions.fri_alpha[1] += 1;
    refused(&[p], "α read at another position");
    let mut p = honest.clone();
    p.0.checks.fri[0].beta[2] += 1;
    refused(&[p], "β read at another position");
}

#[test]
fn four_proofs_check_together_and_one_bad_one_fails_them() {
    let proofs: Vec<(ShardLayout, ShardWitness)> = (0..4u32)
        .map(|i| {
            let (l, w) = shard(8 + 40 * i as usize, 6, 1, i64::from(i) + 10);
            (l, w)
        })
        .collect();
    accepted(&proofs).unwrap();
    let mut bad = proofs.clone();
    bad[2].1.openings[70].siblings[1][0] += Val::ONE;
    refused(&bad, "a bad opening in the third of four proofs");
}

/// The verifier of the circuit's proof needs only the statement: the layout it derives from
/// the statement and the shape (with a reference proof of that shape) is the prover's, and the
/// circuit's proof verifies against it; another statement's layout rejects it.
#[test]
fn the_verifier_derives_the_layout_from_the_statement_alone() {
    // n = 7 > 4 columns: the Freivalds shape.
    for (rows, k, n) in [(8, 6, 1), (300, 5, 2), (64, 20, 7)] {
        let w =
            IntMatrix::new(rows, k, (0..(rows * k) as i64).map(|i| i % 9 - 4).collect()).unwrap();
        let x = IntMatrix::new(k, n, (0..(k * n) as i64).map(|i| i % 5 - 2).collect()).unwrap();
        let pk = setup(&w).unwrap();
        let binding = Binding {
            job_id: [4; 32],
            shard_index: 2,
            worker: [5; 32],
        };
        let proven = prove(&pk, &x, &binding).unwrap();
        let (vk, y) = (pk.verifying_key(), &proven.output);
        let honest = verifier::shard_circuit(vk, &x, y, &binding, &proven.proof).unwrap();
        let derived = verifier::layout_for(vk, &x, y, &binding).unwrap();
        assert_eq!(derived, honest.0, "{rows} × {k}, n = {n}");
        let proof = circuit::prove(&verifier::witness(&[honest]).unwrap()).unwrap();
        let verify = |layout: ShardLayout| {
            let layouts = [layout];
            circuit::verify(
                &verifier::tables(&layouts).unwrap(),
                &verifier::public_values(&layouts),
                &proof,
            )
        };
        verify(derived).unwrap();
        let other = Binding {
            shard_index: 3,
            ..binding
        };
        assert!(verify(verifier::layout_for(vk, &x, y, &other).unwrap()).is_err());
    }
}

/// A table's height is its layout's: a proof claiming a longer table (the layout repeated,
/// which would let a second transcript feed the openings) is refused before anything else.
#[test]
fn a_table_longer_than_its_layout_is_refused() {
    let honest = shard(8, 6, 1, 8);
    let w = verifier::witness(std::slice::from_ref(&honest)).unwrap();
    let mut proof = circuit::prove(&w).unwrap();
    circuit::verify(&w.tables, &w.public_values, &proof).unwrap();
    for table in 1..w.tables.len() {
        proof.proof.degree_bits[table] += 1;
        let err = circuit::verify(&w.tables, &w.public_values, &proof).unwrap_err();
        assert!(
            err.to_string().contains("its layout"),
            "table {table}: {err}"
        );
        proof.proof.degree_bits[table] -= 1;
    }
}

/// A proof of a false Y made by a prover: every commitment, opening and fold is genuine (the
/// quotient is a real low-degree polynomial, nonzero), only the constraints do not hold at ζ.
/// The native verifier refuses it at the out-of-domain check; in the circuit's program every
/// assertion holds (DEEP quotients, final polynomial = last fold) except the constraint check
/// `folded(ζ) = Q(ζ)·(ζ^N − 1)`, so the circuit refuses it for the same reason.
#[test]
fn a_false_statement_fails_only_the_constraint_check_at_zeta() {
    use p3_field::PrimeCharacteristicRing;
    use starkscale_recursion::tables::ext::{Kind, C};
    let (rows, k, n) = (16, 12, 2);
    let w = IntMatrix::new(rows, k, (0..(rows * k) as i64).map(|i| i % 9 - 4).collect()).unwrap();
    let x = IntMatrix::new(k, n, (0..(k * n) as i64).map(|i| i % 5 - 2).collect()).unwrap();
    let pk = setup(&w).unwrap();
    let binding = Binding {
        job_id: [6; 32],
        shard_index: 0,
        worker: [7; 32],
    };
    let honest = prove(&pk, &x, &binding).unwrap();
    let mut data = honest.output.data().to_vec();
    data[3] += 1;
    let y = IntMatrix::new(rows, n, data).unwrap();
    let proof = starkscale_prover::prove_output(&pk, &x, &y, &binding).unwrap();
    let vk = pk.verifying_key();
    let native = starkscale_prover::verify(vk, &x, &y, &binding, &proof).unwrap_err();
    assert!(
        format!("{native}").contains("OodEvaluationMismatch"),
        "{native}"
    );
    let (layout, witness, verdict) =
        verifier::shard_circuit_lenient(vk, &x, &y, &binding, &proof).unwrap();
    assert!(verdict.is_err());
    let w = verifier::witness_lenient(&[(layout.clone(), witness)]).unwrap();
    let program = &w.traces[verifier::ProofTable::Program.position(0)];
    let failing: Vec<usize> = layout
        .checks
        .program
        .ops
        .iter()
        .enumerate()
        .filter(|(_, op)| op.kind == Kind::AssertZero)
        .filter(|(r, _)| (0..4).any(|i| program.values[r * program.width + C + i] != Val::ZERO))
        .map(|(r, _)| r)
        .collect();
    let first_assertion = layout
        .checks
        .program
        .ops
        .iter()
        .position(|op| op.kind == Kind::AssertZero)
        .unwrap();
    assert_eq!(
        failing,
        vec![first_assertion],
        "only the constraint check fails"
    );
    assert!(w.prove_and_verify().is_err());
}
