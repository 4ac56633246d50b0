//! Recording a real shard proof's verification: a challenger that behaves exactly like the
//! shard configuration's `DuplexChallenger` and logs every observed and sampled base-field
//! value, and a Merkle scheme that logs every multi-opening it checks
//! (`super::openings::RecordingMmcs`). `replay` runs the **native** verifier once with
//! both, yielding the very calls the transcript table replays and the openings the openings
//! table re-hashes. If the native verification succeeds, the log is the real transcript (any
//! divergence would break its proof-of-work and FRI checks).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use p3_commit::ExtensionMmcs;
use p3_uni_stark::{verify_with_preprocessed, PreprocessedVerifierKey, Proof, StarkConfig};

use p3_challenger::{CanObserve, CanSample, CanSampleBits, FieldChallenger, GrindingChallenger};
use p3_field::{BasedVectorSpace, PrimeCharacteristicRing, PrimeField64};
use p3_symmetric::MerkleCap;

use super::openings::{Recorded, RecordingMmcs, RecordingPcs};
use crate::tables::transcript::Call;
use starkscale_prover::config::{
    fri_parameters, Challenge, Challenger, Dft, ShardStarkConfig, Val, OOD_POW_BITS,
};
use starkscale_prover::shard::{ShardProof, VerifierInputs, VerifyingKey};
use starkscale_prover::{Binding, IntMatrix, VerifyError};

/// The shard configuration with both recorders in place: same types underneath, so a shard
/// proof decodes unchanged under it.
type RecordingConfig = StarkConfig<RecordingPcs, Challenge, RecordingChallenger>;

/// What one native verification of a shard proof recorded.
pub(crate) struct Replay {
    /// Every challenger call, tagged.
    pub(crate) events: Vec<Event>,
    /// Every Merkle multi-opening checked, in order.
    pub(crate) multi_openings: Vec<Recorded>,
}

/// Runs the native verifier once on `proof` with the recorders. Fails exactly when the native
/// verification fails.
pub(crate) fn replay(
    proof: &Proof<ShardStarkConfig>,
    inputs: &VerifierInputs,
) -> Result<Replay, String> {
    let (replay, verdict) = run(proof, inputs, false)?;
    verdict.map(|()| replay)
}

/// [`replay`] for a proof that may not verify: proof-of-work checks and Merkle openings are
/// recorded but never refused, so the native verifier records the whole transcript and the
/// input openings (and, when the final polynomial matches, the rounds') before its first
/// failing check. Returns what was recorded and the native verdict. Used to build the
/// witness a cheating prover would hand the circuit; the circuit must then refuse it.
pub(crate) fn replay_lenient(
    proof: &Proof<ShardStarkConfig>,
    inputs: &VerifierInputs,
) -> Result<(Replay, Result<(), String>), String> {
    run(proof, inputs, true)
}

fn run(
    proof: &Proof<ShardStarkConfig>,
    (air, public, key): &VerifierInputs,
    lenient: bool,
) -> Result<(Replay, Result<(), String>), String> {
    let mmcs = RecordingMmcs::with_leniency(lenient);
    let pcs = RecordingPcs::new(
        Dft::default(),
        mmcs.clone(),
        fri_parameters(ExtensionMmcs::new(mmcs.clone())),
    );
    let challenger = RecordingChallenger::new();
    if let Ok(mut log) = challenger.log.lock() {
        log.lenient = lenient;
    }
    let config =
        RecordingConfig::new(pcs, challenger.clone()).with_ood_proof_of_work_bits(OOD_POW_BITS);
    // The proof's types do not depend on the recorders: re-read its encoding under them.
    let bytes = starkscale_prover::codec::encode(proof);
    let recorded: Proof<RecordingConfig> = starkscale_prover::codec::decode::<
        _,
        { starkscale_prover::codec::MAX_PROOF_BYTES },
    >("shard proof", &bytes)
    .map_err(|e| e.to_string())?;
    let key: PreprocessedVerifierKey<RecordingConfig> = PreprocessedVerifierKey {
        width: key.width,
        degree_bits: key.degree_bits,
        commitment: key.commitment.clone(),
    };
    let verdict = match catch_unwind(AssertUnwindSafe(|| {
        verify_with_preprocessed(&config, air, &recorded, public, Some(&key))
    })) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("{e:?}")),
        Err(_) => Err("malformed proof (verifier panicked)".into()),
    };
    let replay = Replay {
        events: challenger.events(),
        multi_openings: mmcs.recorded(),
    };
    Ok((replay, verdict))
}

/// Runs the native verifier on `proof` with a challenger that records every Fiat–Shamir call
/// (what the circuit's transcript table replays). Fails exactly when
/// [`starkscale_prover::verify`] fails; on success the calls are the proof's real transcript.
pub fn replay_transcript(
    vk: &VerifyingKey,
    x: &IntMatrix,
    y: &IntMatrix,
    binding: &Binding,
    proof: &ShardProof,
) -> Result<Vec<Call>, VerifyError> {
    Ok(replay_events(vk, x, y, binding, proof)?
        .into_iter()
        .map(|e| e.call)
        .collect())
}

/// [`replay_transcript`] with what each call was for (seed, root, challenge, …).
pub fn replay_events(
    vk: &VerifyingKey,
    x: &IntMatrix,
    y: &IntMatrix,
    binding: &Binding,
    proof: &ShardProof,
) -> Result<Vec<Event>, VerifyError> {
    let inputs = starkscale_prover::shard::verifier_inputs(vk, x, y, binding, proof)?;
    replay(proof.plonky3_proof(), &inputs)
        .map(|r| r.events)
        .map_err(VerifyError::Invalid)
}

/// What a recorded call was for, as far as the challenger can tell from how it was called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    /// A value absorbed as bytes packed into field elements: a domain-separation seed (fixed
    /// by the protocol and the instance's shape).
    Seed,
    /// A field value absorbed on its own: a public value, an opened value, a final-polynomial
    /// coefficient.
    Value,
    /// Element `element` of the `index`-th Merkle root absorbed (trace, preprocessed,
    /// quotient, then the FRI rounds').
    Root {
        /// Which root, in absorb order.
        index: u32,
        /// Which of its 8 elements.
        element: u8,
    },
    /// A proof-of-work witness.
    PowWitness,
    /// The sample that checks a proof-of-work witness (its low `bits` bits must be zero).
    PowSample {
        /// Bits of work.
        bits: u8,
    },
    /// A sample of `bits` bits (a FRI query index).
    IndexSample {
        /// Bits of the index.
        bits: u8,
    },
    /// Coefficient `coeff` of the `index`-th challenge-field sample (α, ζ, the batching
    /// challenge, the folding challenges, in draw order).
    Challenge {
        /// Which challenge.
        index: u32,
        /// Which coefficient.
        coeff: u8,
    },
}

/// One recorded call and what it was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// The call and its value.
    pub call: Call,
    /// What it was for.
    pub tag: Tag,
}

#[derive(Debug, Default)]
struct Log {
    events: Vec<Event>,
    roots: u32,
    challenges: u32,
    // Proof-of-work checks pass whatever the witness (the sample is still recorded).
    lenient: bool,
}

/// The shard configuration's challenger, logging every call.
#[derive(Clone, Debug)]
pub struct RecordingChallenger {
    inner: Challenger,
    log: Arc<Mutex<Log>>,
}

impl RecordingChallenger {
    /// A fresh challenger (the configuration's initial state) with an empty log.
    pub fn new() -> Self {
        Self {
            inner: Challenger::new(p3_koala_bear::default_koalabear_poseidon2_16()),
            log: Arc::new(Mutex::new(Log::default())),
        }
    }

    /// The calls made so far with what each was for.
    pub fn events(&self) -> Vec<Event> {
        self.log
            .lock()
            .map(|l| l.events.clone())
            .unwrap_or_default()
    }

    fn record(&self, call: Call, tag: Tag) {
        if let Ok(mut log) = self.log.lock() {
            log.events.push(Event { call, tag });
        }
    }

    fn observe_tagged(&mut self, value: Val, tag: Tag) {
        self.record(Call::Observe(value), tag);
        self.inner.observe(value);
    }

    fn sample_tagged(&mut self, tag: Tag) -> Val {
        let v: Val = self.inner.sample();
        self.record(Call::Sample(v), tag);
        v
    }

    /// A counter shared by every clone (roots or challenges so far), then incremented.
    fn next(&self, roots: bool) -> u32 {
        self.log.lock().map_or(0, |mut l| {
            let c = if roots {
                &mut l.roots
            } else {
                &mut l.challenges
            };
            *c += 1;
            *c - 1
        })
    }

    fn sample_bits_tagged(&mut self, bits: usize, tag: Tag) -> usize {
        let v = self.sample_tagged(tag).as_canonical_u64();
        let mask = if bits >= 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        (v & mask) as usize
    }
}

impl Default for RecordingChallenger {
    fn default() -> Self {
        Self::new()
    }
}

impl CanObserve<Val> for RecordingChallenger {
    fn observe(&mut self, value: Val) {
        self.observe_tagged(value, Tag::Value);
    }

    /// Only the domain-separation seeds are absorbed as a slice (bytes packed into elements).
    fn observe_slice(&mut self, values: &[Val]) {
        for v in values {
            self.observe_tagged(*v, Tag::Seed);
        }
    }
}

impl RecordingChallenger {
    fn observe_cap<const N: usize>(&mut self, cap: &MerkleCap<Val, [Val; N]>) {
        for root in cap.roots() {
            let index = self.next(true);
            for (element, v) in root.iter().enumerate() {
                self.observe_tagged(
                    *v,
                    Tag::Root {
                        index,
                        element: element as u8,
                    },
                );
            }
        }
    }
}

impl<const N: usize> CanObserve<MerkleCap<Val, [Val; N]>> for RecordingChallenger {
    fn observe(&mut self, cap: MerkleCap<Val, [Val; N]>) {
        self.observe_cap(&cap);
    }
}

impl<const N: usize> CanObserve<&MerkleCap<Val, [Val; N]>> for RecordingChallenger {
    fn observe(&mut self, cap: &MerkleCap<Val, [Val; N]>) {
        self.observe_cap(cap);
    }
}

/// Field samples: the verifier draws only challenge-field elements, one base coefficient at a
/// time (coefficient 0 first), so the `n`-th is coefficient `n mod 4` of challenge `n / 4`.
impl CanSample<Val> for RecordingChallenger {
    fn sample(&mut self) -> Val {
        let n = self.next(false);
        self.sample_tagged(Tag::Challenge {
            index: n / 4,
            coeff: (n % 4) as u8,
        })
    }
}

impl CanSample<Challenge> for RecordingChallenger {
    fn sample(&mut self) -> Challenge {
        let coeffs: Vec<Val> = (0..4).map(|_| CanSample::<Val>::sample(self)).collect();
        Challenge::from_basis_coefficients_fn(|i| coeffs[i])
    }
}

impl CanSampleBits<usize> for RecordingChallenger {
    fn sample_bits(&mut self, bits: usize) -> usize {
        self.sample_bits_tagged(bits, Tag::IndexSample { bits: bits as u8 })
    }
}

impl FieldChallenger<Val> for RecordingChallenger {}

impl GrindingChallenger for RecordingChallenger {
    type Witness = Val;

    /// As the trait's default: with no bits of work nothing is absorbed.
    fn check_witness(&mut self, bits: usize, witness: Val) -> bool {
        if bits == 0 {
            return true;
        }
        self.observe_tagged(witness, Tag::PowWitness);
        let passes = self.sample_bits_tagged(bits, Tag::PowSample { bits: bits as u8 }) == 0;
        passes || self.log.lock().is_ok_and(|l| l.lenient)
    }

    /// Finds a witness on a throwaway copy, then applies it here (only provers grind; the
    /// replay never does).
    fn grind(&mut self, bits: usize) -> Val {
        for i in 0..u32::MAX {
            let w = Val::from_u32(i);
            let mut probe = Self {
                inner: self.inner.clone(),
                log: Arc::new(Mutex::new(Log::default())),
            };
            if probe.check_witness(bits, w) {
                let _accepted = self.check_witness(bits, w);
                return w;
            }
        }
        Val::ZERO
    }
}
