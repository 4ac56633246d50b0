//! Several proofs in one circuit: the shared permutation table, then each proof's tables in
//! its own range.

use super::*;

fn check_count(proofs: usize) -> Result<(), CircuitError> {
    match proofs {
        0 => Err(CircuitError::Empty),
        got if got > MAX_PROOFS as usize => Err(CircuitError::TooManyProofs {
            got,
            max: MAX_PROOFS,
        }),
        _ => Ok(()),
    }
}

/// The circuit's tables for `layouts`: the shared permutation table, then each proof's tables,
/// the `i`-th proof's positions and ids in range `i` (so proofs never read each other's
/// values).
pub fn tables(layouts: &[ShardLayout]) -> Result<Vec<Table>, CircuitError> {
    check_count(layouts.len())?;
    let mut out = vec![Table::Poseidon2(Box::<Poseidon2Table>::default())];
    for (slot, layout) in layouts.iter().enumerate() {
        out.extend(layout.at(slot).tables());
    }
    Ok(out)
}

/// The public values of [`tables`]: none (the statement is in the transcript's layout).
pub fn public_values(layouts: &[ShardLayout]) -> Vec<Vec<Val>> {
    vec![Vec::new(); 1 + TABLES_PER_PROOF * layouts.len()]
}

/// The circuit's witness for `proofs` (layout and witness of each, in the order of [`tables`]).
/// Fails if a proof's own checks fail (see [`witness_lenient`] for a witness the circuit
/// refuses instead).
pub fn witness(proofs: &[(ShardLayout, ShardWitness)]) -> Result<Witness, CircuitError> {
    witness_with(proofs, false)
}

/// [`witness`], but a proof whose checks fail still gives traces, for the circuit to refuse:
/// what a prover trying to pass a bad proof would hand the circuit (the differential tests).
pub fn witness_lenient(proofs: &[(ShardLayout, ShardWitness)]) -> Result<Witness, CircuitError> {
    witness_with(proofs, true)
}

fn witness_with(
    proofs: &[(ShardLayout, ShardWitness)],
    lenient: bool,
) -> Result<Witness, CircuitError> {
    check_count(proofs.len())?;
    let mut lookups = Vec::new();
    let mut traces: Vec<RowMajorMatrix<Val>> = Vec::new();
    for (slot, (layout, w)) in proofs.iter().enumerate() {
        let (t, l) = layout.at(slot).traces(w, lenient)?;
        traces.extend(t);
        lookups.extend(l);
    }
    let mut all = vec![poseidon2::trace(&permutation_rows(lookups))];
    all.extend(traces);
    let layouts: Vec<ShardLayout> = proofs.iter().map(|(l, _)| l.clone()).collect();
    Ok(Witness {
        tables: tables(&layouts)?,
        traces: all,
        public_values: public_values(&layouts),
    })
}
