//! The program the program table runs: a straight-line program over the challenge field,
//! each operation reading earlier values (or values other tables offer) and transcript
//! values, and its native run.

use std::collections::HashMap;

use p3_field::{BasedVectorSpace, Field, PrimeCharacteristicRing};

use super::ext::D;
use crate::error::ProgramError;
use starkscale_prover::config::{Challenge, Val};

/// Where an operand comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ref {
    /// Value `i` of this program (the result of its `i`-th operation).
    Local(usize),
    /// A value another table offers on [`super::ext::BUS`] under this id (relative to the proof's range).
    Extern(u32),
}

/// A value read on the transcript bus (positions relative to the proof's range).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// An extension value: its four coefficients at these positions.
    Ext([u32; D]),
    /// A base value at this position (the other coefficients are zero).
    Base(u32),
}

/// What a row computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `c = m·a·b + l_a·a + l_b·b + l_t·t + κ`.
    General,
    /// `a·c = 1`.
    Inverse,
    /// The general formula, equal to zero.
    AssertZero,
    /// A public input (stand-alone tables only, row 0; a proof's program with one cannot be
    /// proved).
    Input,
}

/// One operation of a [`Program`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Op {
    /// What it computes.
    pub kind: Kind,
    /// First operand.
    pub a: Option<Ref>,
    /// Second operand.
    pub b: Option<Ref>,
    /// A transcript value.
    pub t: Option<Read>,
    /// Coefficient of `a·b`.
    pub m: Val,
    /// Coefficient of `a`.
    pub la: Val,
    /// Coefficient of `b`.
    pub lb: Val,
    /// Coefficient of `t`.
    pub lt: Val,
    /// The constant term.
    pub k: Challenge,
}

impl Op {
    fn general() -> Self {
        Self {
            kind: Kind::General,
            a: None,
            b: None,
            t: None,
            m: Val::ZERO,
            la: Val::ZERO,
            lb: Val::ZERO,
            lt: Val::ZERO,
            k: Challenge::ZERO,
        }
    }

    /// `a + b`.
    pub fn add(a: Ref, b: Ref) -> Self {
        Self::lin(a, Val::ONE, b, Val::ONE)
    }

    /// `a − b`.
    pub fn sub(a: Ref, b: Ref) -> Self {
        Self::lin(a, Val::ONE, b, -Val::ONE)
    }

    /// `la·a + lb·b`.
    pub fn lin(a: Ref, la: Val, b: Ref, lb: Val) -> Self {
        Self {
            a: Some(a),
            b: Some(b),
            la,
            lb,
            ..Self::general()
        }
    }

    /// `a · b`.
    pub fn mul(a: Ref, b: Ref) -> Self {
        Self {
            a: Some(a),
            b: Some(b),
            m: Val::ONE,
            ..Self::general()
        }
    }

    /// `a` itself (a copy: reads an external value once into the program).
    pub fn copy(a: Ref) -> Self {
        Self {
            a: Some(a),
            la: Val::ONE,
            ..Self::general()
        }
    }

    /// `a + κ`.
    pub fn add_const(a: Ref, k: Challenge) -> Self {
        Self { k, ..Self::copy(a) }
    }

    /// The constant `κ`.
    pub fn constant(k: Challenge) -> Self {
        Self {
            k,
            ..Self::general()
        }
    }

    /// The transcript value `t`.
    pub fn read(t: Read) -> Self {
        Self {
            t: Some(t),
            lt: Val::ONE,
            ..Self::general()
        }
    }

    /// `a·b + t` (a Horner step over transcript values).
    pub fn mul_add_read(a: Ref, b: Ref, t: Read) -> Self {
        Self {
            t: Some(t),
            lt: Val::ONE,
            ..Self::mul(a, b)
        }
    }

    /// `a + lt·t` (a multiply-accumulate of a transcript value by a constant).
    pub fn add_scaled_read(a: Option<Ref>, t: Read, lt: Val) -> Self {
        Self {
            a,
            la: Val::from_bool(a.is_some()),
            t: Some(t),
            lt,
            ..Self::general()
        }
    }

    /// `a·b + κ` (a Horner step over constants).
    pub fn mul_add_const(a: Ref, b: Ref, k: Challenge) -> Self {
        Self {
            k,
            ..Self::mul(a, b)
        }
    }

    /// `1 / a`.
    pub fn inverse(a: Ref) -> Self {
        Self {
            kind: Kind::Inverse,
            a: Some(a),
            ..Self::general()
        }
    }

    /// Asserts `a = b`.
    pub fn assert_eq(a: Ref, b: Ref) -> Self {
        Self {
            kind: Kind::AssertZero,
            ..Self::sub(a, b)
        }
    }

    /// A public input row (stand-alone tables only).
    pub fn input() -> Self {
        Self {
            kind: Kind::Input,
            ..Self::general()
        }
    }
}

/// A straight-line program: value `i` is the result of `ops[i]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Program {
    /// The operations in order.
    pub ops: Vec<Op>,
}

impl Program {
    /// Appends `op`; returns a reference to its value.
    pub fn push(&mut self, op: Op) -> Ref {
        self.ops.push(op);
        Ref::Local(self.ops.len() - 1)
    }

    /// Runs the program natively: `transcript(pos)` gives a transcript value, `external(id)`
    /// an external operand. Returns every value, or the first operation that cannot run (an
    /// operand not yet computed or unknown, an inverse of zero, a failed assertion).
    ///
    /// With `lenient`, nothing fails: a missing operand is zero, an inverse of zero is zero
    /// and a failed assertion keeps its value (for witnesses the circuit must refuse).
    pub fn run(
        &self,
        transcript: impl Fn(u32) -> Option<Val>,
        external: impl Fn(u32) -> Option<Challenge>,
        input: Challenge,
        lenient: bool,
    ) -> Result<Vec<Challenge>, ProgramError> {
        let mut values: Vec<Challenge> = Vec::with_capacity(self.ops.len());
        for (i, op) in self.ops.iter().enumerate() {
            let operand = |r: Option<Ref>,
                           values: &[Challenge]|
             -> Result<Challenge, ProgramError> {
                match r {
                    None => Ok(Challenge::ZERO),
                    Some(Ref::Local(j)) if j < i => Ok(values[j]),
                    Some(Ref::Local(j)) => Err(ProgramError::NotYetComputed { op: i, value: j }),
                    Some(Ref::Extern(id)) => match external(id) {
                        Some(v) => Ok(v),
                        None if lenient => Ok(Challenge::ZERO),
                        None => Err(ProgramError::UnknownExternal { op: i, id }),
                    },
                }
            };
            let (a, b) = (operand(op.a, &values)?, operand(op.b, &values)?);
            let t = match op.t {
                None => Challenge::ZERO,
                Some(read) => match read_value(read, &transcript) {
                    Some(v) => v,
                    None if lenient => Challenge::ZERO,
                    None => {
                        let pos = match read {
                            Read::Ext(p) => p[0],
                            Read::Base(p) => p,
                        };
                        return Err(ProgramError::MissingTranscript { op: i, pos });
                    }
                },
            };
            let general = a * b * op.m + a * op.la + b * op.lb + t * op.lt + op.k;
            let value = match op.kind {
                Kind::General => general,
                Kind::Input => input,
                Kind::AssertZero if general.is_zero() || lenient => general,
                Kind::AssertZero => return Err(ProgramError::AssertionFails { op: i }),
                Kind::Inverse => match a.try_inverse() {
                    Some(inv) => inv,
                    None if lenient => Challenge::ZERO,
                    None => return Err(ProgramError::InverseOfZero { op: i }),
                },
            };
            values.push(value);
        }
        Ok(values)
    }

    /// How many times each transcript position is read (for the transcript's multiplicities).
    pub fn transcript_reads(&self) -> HashMap<u32, u32> {
        let mut reads = HashMap::new();
        for op in &self.ops {
            let positions: &[u32] = match &op.t {
                Some(Read::Ext(p)) => p,
                Some(Read::Base(p)) => std::slice::from_ref(p),
                None => &[],
            };
            for p in positions {
                *reads.entry(*p).or_insert(0) += 1;
            }
        }
        reads
    }
}

fn read_value(read: Read, transcript: &impl Fn(u32) -> Option<Val>) -> Option<Challenge> {
    match read {
        Read::Base(p) => transcript(p).map(Challenge::from),
        Read::Ext(p) => {
            let c = [
                transcript(p[0])?,
                transcript(p[1])?,
                transcript(p[2])?,
                transcript(p[3])?,
            ];
            Some(Challenge::from_basis_coefficients_fn(|i| c[i]))
        }
    }
}

/// One operation of an [`ExtProgram`]; operands are ids of earlier values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtOp {
    /// `a + b`.
    Add(usize, usize),
    /// `a · b`.
    Mul(usize, usize),
}

/// A simple program on one input: value 0 is the input, value `i + 1` the result of `ops[i]`;
/// the last value is the output. Stand-alone tables of it take input and output as public
/// values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtProgram {
    /// The operations in order.
    pub ops: Vec<ExtOp>,
}

impl ExtProgram {
    /// `x^(2^n)` by `n` squarings.
    pub fn square_n(n: usize) -> Self {
        Self {
            ops: (0..n).map(|i| ExtOp::Mul(i, i)).collect(),
        }
    }

    /// Runs the program natively on `input`; returns every value (input first).
    pub fn run(&self, input: Challenge) -> Result<Vec<Challenge>, ProgramError> {
        self.program().run(|_| None, |_| None, input, false)
    }

    /// The general program: an input row, then the operations.
    pub fn program(&self) -> Program {
        let mut p = Program::default();
        p.push(Op::input());
        for op in &self.ops {
            p.push(match *op {
                ExtOp::Add(a, b) => Op::add(Ref::Local(a), Ref::Local(b)),
                ExtOp::Mul(a, b) => Op::mul(Ref::Local(a), Ref::Local(b)),
            });
        }
        p
    }
}
