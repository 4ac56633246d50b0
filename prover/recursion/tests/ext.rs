//! Recursion part 1: the extension-field arithmetic table, alone and proved together with the
//! Merkle and permutation tables; corruption of its constraints, its bus and its public values.

#![allow(clippy::unwrap_used, missing_docs)]

use p3_field::{BasedVectorSpace, PrimeCharacteristicRing};
use starkscale_prover::config::{Challenge, Val};
use starkscale_recursion::circuit::{self, Witness};
use starkscale_recursion::tables::ext::{self, ExtOp, ExtProgram};

fn zeta() -> Challenge {
    Challenge::from_basis_coefficients_fn(|i| Val::from_u32(0x0123_4567 + 99 * i as u32))
}

/// ζ^(2^n) − 1 and friends: the kind of arithmetic the verifier does on challenges.
fn program() -> ExtProgram {
    let mut ops: Vec<ExtOp> = (0..6).map(|i| ExtOp::Mul(i, i)).collect(); // values 1..=6: ζ^(2^i)
    ops.push(ExtOp::Add(6, 0)); // 7: ζ^64 + ζ
    ops.push(ExtOp::Mul(7, 3)); // 8: (ζ^64 + ζ)·ζ^8
    ops.push(ExtOp::Mul(8, 8)); // 9
    ExtProgram { ops }
}

fn refused(w: &Witness) -> bool {
    w.prove_and_verify()
        .inspect_err(|e| eprintln!("refused: {e}"))
        .is_err()
}

#[test]
fn honest_programs_verify_and_match_native_arithmetic() {
    let z = zeta();
    for program in [ExtProgram::square_n(1), ExtProgram::square_n(13), program()] {
        let mut w = Witness::default();
        let out = w.add_ext(&program, z).unwrap();
        assert_eq!(out, *program.run(z).unwrap().last().unwrap());
        w.prove_and_verify().unwrap();
    }
    let native = {
        let z64 = z.exp_power_of_2(6);
        let v = (z64 + z) * z.exp_power_of_2(3);
        v * v
    };
    assert_eq!(*program().run(z).unwrap().last().unwrap(), native);
}

#[test]
fn changing_the_input_or_output_fails_verification() {
    let mut w = Witness::default();
    let _output = w.add_ext(&program(), zeta()).unwrap();
    let proof = circuit::prove(&w).unwrap();
    for i in 0..ext::NUM_PUBLIC {
        let mut p = w.public_values.clone();
        p[0][i] += Val::ONE;
        assert!(
            circuit::verify(&w.tables, &p, &proof).is_err(),
            "public value {i}"
        );
    }
}

#[test]
fn the_verifiers_program_fixes_the_operations() {
    let mut w = Witness::default();
    let _output = w.add_ext(&program(), zeta()).unwrap();
    let proof = circuit::prove(&w).unwrap();
    // The same values claimed for a program with one operation swapped or one operand moved.
    let mut swapped = program();
    swapped.ops[6] = ExtOp::Mul(6, 0);
    let mut moved = program();
    moved.ops[7] = ExtOp::Mul(7, 2);
    for other in [swapped, moved] {
        let tables = vec![circuit::Table::Ext(ext::ExtArithTable::new(&other))];
        assert!(circuit::verify(&tables, &w.public_values, &proof).is_err());
    }
}

#[test]
fn a_wrong_product_fails() {
    let mut w = Witness::default();
    let _output = w.add_ext(&ExtProgram::square_n(4), zeta()).unwrap();
    // Row 2's result (C starts at column 13) is off by one, and row 3 reads the wrong value
    // consistently (its operands equal row 2's claimed result), so the bus stays balanced:
    // only the multiplication constraint of row 2 is broken.
    let cols = ext::COLS;
    w.traces[0].values[2 * cols + 13] += Val::ONE;
    w.traces[0].values[3 * cols + 5] += Val::ONE;
    w.traces[0].values[3 * cols + 9] += Val::ONE;
    assert!(refused(&w));
}

#[test]
fn an_operand_no_row_produced_fails() {
    let mut w = Witness::default();
    let _output = w.add_ext(&ExtProgram::square_n(4), zeta()).unwrap();
    // Row 3's first operand is changed (the row's product is recomputed to match): the value
    // it looks up was never produced, so only the bus can catch it.
    let cols = ext::COLS;
    let row = 3 * cols;
    let a = Challenge::from_basis_coefficients_fn(|i| {
        w.traces[0].values[row + 5 + i] + Val::from_bool(i == 0)
    });
    let b = Challenge::from_basis_coefficients_fn(|i| w.traces[0].values[row + 9 + i]);
    let c = a * b;
    for i in 0..4 {
        w.traces[0].values[row + 5 + i] = a.as_basis_coefficients_slice()[i];
    }
    for i in 0..4 {
        w.traces[0].values[row + 13 + i] = c.as_basis_coefficients_slice()[i];
    }
    // Row 4 squares row 3's result: keep it consistent too, and the output.
    let c4 = c * c;
    for i in 0..4 {
        w.traces[0].values[4 * cols + 5 + i] = c.as_basis_coefficients_slice()[i];
        w.traces[0].values[4 * cols + 9 + i] = c.as_basis_coefficients_slice()[i];
        w.traces[0].values[4 * cols + 13 + i] = c4.as_basis_coefficients_slice()[i];
    }
    w.public_values[0] = ext::public_values(zeta(), c4);
    assert!(refused(&w));
}
