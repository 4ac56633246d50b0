//! The crate's errors, with the context a caller needs to tell what failed and where.

/// Why an arithmetic program could not run natively.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProgramError {
    /// An operand refers to a value computed later (or never).
    #[error("operation {op} reads value {value}, which is not computed before it")]
    NotYetComputed {
        /// The operation.
        op: usize,
        /// The value it reads.
        value: usize,
    },
    /// An external operand no other table offers.
    #[error("operation {op} reads external value {id}, which no table offers")]
    UnknownExternal {
        /// The operation.
        op: usize,
        /// The external id (relative to the proof's range).
        id: u32,
    },
    /// A transcript position the witness has no value for.
    #[error("operation {op} reads transcript position {pos}, past the transcript's end")]
    MissingTranscript {
        /// The operation.
        op: usize,
        /// The position.
        pos: u32,
    },
    /// An inverse of zero (for the verifier: ζ in the trace domain, or ζ equal to a query's
    /// point).
    #[error("operation {op} inverts zero")]
    InverseOfZero {
        /// The operation.
        op: usize,
    },
    /// An assertion that does not hold (for the verifier: a failed check of the proof).
    #[error("assertion {op} fails: the proof does not satisfy the verifier's check there")]
    AssertionFails {
        /// The operation.
        op: usize,
    },
    /// A program with no operations.
    #[error("the program is empty")]
    Empty,
}

/// Why part 2's layout of a proof could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// The proof's rounds, trees or queries do not match its shape.
    #[error("the proof's {what} do not match its shape")]
    Shape {
        /// What does not match.
        what: &'static str,
    },
    /// A folding round outside what the FRI table folds.
    #[error("a folding arity of 2^{log_arity}: the circuit folds arities 2, 4 and 8")]
    Arity {
        /// The round's log arity.
        log_arity: usize,
    },
    /// The statement's vectors or outputs do not fit the proof's shape.
    #[error("the statement has {vectors} vectors and {outputs} output columns, the proof {expected} (k = {k})")]
    Statement {
        /// Vectors in the statement.
        vectors: usize,
        /// Output columns in the statement.
        outputs: usize,
        /// Vectors the proof has.
        expected: usize,
        /// The inner dimension.
        k: usize,
    },
    /// The program would not fit the circuit's id space.
    #[error("the verifier's program has {ops} operations, more than the circuit's {max}")]
    TooLong {
        /// Operations.
        ops: usize,
        /// The most allowed.
        max: usize,
    },
}

/// Why the circuit could not be proved or did not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CircuitError {
    /// Nothing to prove.
    #[error("nothing to prove: give the circuit at least one shard proof")]
    Empty,
    /// More proofs than one circuit checks.
    #[error("{got} proofs: one circuit checks at most {max}")]
    TooManyProofs {
        /// Proofs given.
        got: usize,
        /// The most one circuit checks.
        max: u32,
    },
    /// A proof's witness does not have its layout's shape.
    #[error("proof {proof}: the witness has {got} {what}, its layout {want}")]
    WitnessShape {
        /// The proof's place in the list.
        proof: usize,
        /// What differs.
        what: &'static str,
        /// In the witness.
        got: usize,
        /// In the layout.
        want: usize,
    },
    /// A proof's checks fail natively (strict witnesses only).
    #[error("proof {proof}: {source}")]
    Program {
        /// The proof's place in the list (0 for a stand-alone program).
        proof: usize,
        /// What failed.
        #[source]
        source: ProgramError,
    },
    /// The backend refused to prove (an inconsistent witness).
    #[error("the circuit could not be proved: {detail}")]
    Prove {
        /// The backend's report.
        detail: String,
    },
    /// The proof has another number of tables than the circuit.
    #[error("{got} tables in the proof, {want} expected ({values} public-value vectors)")]
    TableCount {
        /// Tables in the proof.
        got: usize,
        /// Tables in the circuit.
        want: usize,
        /// Public-value vectors given.
        values: usize,
    },
    /// A table's height is not its layout's.
    #[error("table {table} has height 2^{got}, its layout 2^{want}")]
    TableHeight {
        /// The table's place in the circuit.
        table: usize,
        /// In the proof.
        got: usize,
        /// In the layout.
        want: usize,
    },
    /// A bus carries tuples of two widths (a circuit assembled wrongly).
    #[error("bus {bus} carries tuples of {first} and of {other} elements")]
    BusWidth {
        /// The bus.
        bus: String,
        /// The first width seen.
        first: usize,
        /// Another.
        other: usize,
    },
    /// The proof does not verify.
    #[error("the circuit proof does not verify: {detail}")]
    Verify {
        /// The backend's report.
        detail: String,
    },
}
