//! Recording a real shard proof's transcript: a challenger that behaves exactly like the shard
//! configuration's `DuplexChallenger` and logs every observed and sampled base-field value, so
//! that running the **native** verifier with it yields the very calls the transcript table
//! must replay. If the native verification succeeds, the log is the real transcript (any
//! divergence would break its proof-of-work and FRI checks).

use std::sync::{Arc, Mutex};

use p3_challenger::{CanObserve, CanSample, CanSampleBits, FieldChallenger, GrindingChallenger};
use p3_field::{BasedVectorSpace, PrimeCharacteristicRing, PrimeField64};
use p3_symmetric::MerkleCap;

use super::transcript::Call;
use crate::config::{Challenge, Challenger, Val};

/// The shard configuration's challenger, logging every call.
#[derive(Clone, Debug)]
pub struct RecordingChallenger {
    inner: Challenger,
    log: Arc<Mutex<Vec<Call>>>,
}

impl RecordingChallenger {
    /// A fresh challenger (the configuration's initial state) with an empty log.
    pub fn new() -> Self {
        Self {
            inner: Challenger::new(p3_koala_bear::default_koalabear_poseidon2_16()),
            log: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The calls made so far, by this challenger and every clone of it.
    pub fn calls(&self) -> Vec<Call> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn record(&self, call: Call) {
        if let Ok(mut log) = self.log.lock() {
            log.push(call);
        }
    }

    fn sample_base(&mut self) -> Val {
        let v: Val = self.inner.sample();
        self.record(Call::Sample(v));
        v
    }
}

impl Default for RecordingChallenger {
    fn default() -> Self {
        Self::new()
    }
}

impl CanObserve<Val> for RecordingChallenger {
    fn observe(&mut self, value: Val) {
        self.record(Call::Observe(value));
        self.inner.observe(value);
    }
}

impl<const N: usize> CanObserve<MerkleCap<Val, [Val; N]>> for RecordingChallenger {
    fn observe(&mut self, cap: MerkleCap<Val, [Val; N]>) {
        for root in cap.roots() {
            for v in root {
                CanObserve::<Val>::observe(self, *v);
            }
        }
    }
}

impl<const N: usize> CanObserve<&MerkleCap<Val, [Val; N]>> for RecordingChallenger {
    fn observe(&mut self, cap: &MerkleCap<Val, [Val; N]>) {
        for root in cap.roots() {
            for v in root {
                CanObserve::<Val>::observe(self, *v);
            }
        }
    }
}

impl CanSample<Val> for RecordingChallenger {
    fn sample(&mut self) -> Val {
        self.sample_base()
    }
}

impl CanSample<Challenge> for RecordingChallenger {
    fn sample(&mut self) -> Challenge {
        // Coefficient 0 first, as the duplex challenger's extension sampling does.
        let coeffs: Vec<Val> = (0..4).map(|_| self.sample_base()).collect();
        Challenge::from_basis_coefficients_fn(|i| coeffs[i])
    }
}

impl CanSampleBits<usize> for RecordingChallenger {
    fn sample_bits(&mut self, bits: usize) -> usize {
        let v = self.sample_base().as_canonical_u64();
        let mask = if bits >= 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        (v & mask) as usize
    }
}

impl FieldChallenger<Val> for RecordingChallenger {}

impl GrindingChallenger for RecordingChallenger {
    type Witness = Val;

    /// Finds a witness on a throwaway copy, then applies it here (only provers grind; the
    /// replay never does).
    fn grind(&mut self, bits: usize) -> Val {
        for i in 0..u32::MAX {
            let w = Val::from_u32(i);
            let mut probe = Self {
                inner: self.inner.clone(),
                log: Arc::new(Mutex::new(Vec::new())),
            };
            if probe.check_witness(bits, w) {
                let _accepted = self.check_witness(bits, w);
                return w;
            }
        }
        Val::ZERO
    }
}
