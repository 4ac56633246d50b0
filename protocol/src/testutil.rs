//! Shared test fixtures and proptest strategies (compiled only for tests).

use ed25519_dalek::SigningKey;
use proptest::prelude::*;

use crate::codec::Bytes;
use crate::ids::{ChunkId, JobId, ModelId, PeerKey};
use crate::job::{JobLimits, JobSpec};
use crate::manifest::{BlobDescriptor, Manifest, ManifestParams, ShardKey};
use crate::matrix::IntMatrix;
use crate::messages::*;
use crate::model::{ModelManifest, SignedModel};
use crate::status::JobStatus;

/// A signing key from a one-byte seed.
pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// The seed job (10×10 · 10×1).
pub fn seed_spec() -> JobSpec {
    JobSpec::from_json(
        include_str!("../testdata/seed-matvec-10x10.json"),
        &JobLimits::default(),
    )
    .unwrap()
}

/// Creation time of [`seed_manifest`].
pub const T0: u64 = 1_700_000_000_000;

/// The owner of [`seed_model`].
pub fn model_owner() -> SigningKey {
    key(200)
}

/// The seed job's W as a model of 4 shards of 3, 3, 3, 1 rows, signed by [`model_owner`].
/// Its shard keys are placeholders (this crate has no prover): protocol tests only.
pub fn seed_model() -> SignedModel {
    let keys = vec![
        ShardKey {
            commitment: [7; 32],
            weight_bound: 9,
        };
        4
    ];
    let owner = model_owner();
    ModelManifest::for_weights("seed", seed_spec().w(), 3, 1, keys, PeerKey::from(&owner))
        .unwrap()
        .sign(&owner)
        .unwrap()
}

/// The seed job's manifest: 4 shards of 3, 3, 3, 1 rows; 10 minutes to the deadline.
pub fn seed_manifest(entry: PeerKey) -> Manifest {
    Manifest::new(
        seed_model(),
        seed_spec().x(),
        ManifestParams {
            created_ms: T0,
            deadline_ms: T0 + 600_000,
            entry,
        },
    )
    .unwrap()
}

/// A claim by `key` on shard 0 of a fixed job.
pub fn sample_claim(key: &SigningKey) -> ShardClaimed {
    ShardClaimed {
        job: JobId([5; 32]),
        shard: 0,
        claimed_at_ms: T0,
        lease_expires_ms: T0 + 60_000,
        claimer: PeerKey::from(key),
        backup: false,
    }
}

pub fn arb_peer() -> impl Strategy<Value = PeerKey> {
    any::<[u8; 32]>().prop_map(PeerKey)
}

pub fn arb_job() -> impl Strategy<Value = JobId> {
    any::<[u8; 32]>().prop_map(JobId)
}

pub fn arb_bytes(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(Bytes)
}

pub fn arb_matrix() -> impl Strategy<Value = IntMatrix> {
    (0usize..5, 0usize..5).prop_flat_map(|(r, c)| {
        prop::collection::vec(any::<i64>(), r * c)
            .prop_map(move |data| IntMatrix::new(r, c, data).unwrap())
    })
}

pub fn arb_blob() -> impl Strategy<Value = BlobDescriptor> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
        prop::collection::vec(
            (any::<[u8; 32]>(), any::<u32>()).prop_map(|(id, len)| crate::chunk::ChunkRef {
                id: ChunkId(id),
                len,
            }),
            0..4,
        ),
    )
        .prop_map(|(rows, cols, total_bytes, chunks)| BlobDescriptor {
            rows,
            cols,
            total_bytes,
            chunks,
        })
}

pub fn arb_model() -> impl Strategy<Value = SignedModel> {
    (
        ".{0,12}",
        arb_blob(),
        any::<u32>(),
        any::<u32>(),
        arb_peer(),
        any::<[u8; 32]>(),
    )
        .prop_map(
            |(name, w, rows_per_shard, config_id, owner, sig)| SignedModel {
                manifest: ModelManifest {
                    name,
                    w,
                    rows_per_shard,
                    config_id,
                    shard_keys: vec![
                        ShardKey {
                            commitment: [7; 32],
                            weight_bound: 127
                        };
                        (rows_per_shard % 5) as usize
                    ],
                    owner,
                },
                signature: crate::ids::SignatureBytes([sig, sig].concat().try_into().unwrap()),
            },
        )
}

pub fn arb_manifest() -> impl Strategy<Value = Manifest> {
    (
        arb_job(),
        arb_model(),
        arb_blob(),
        any::<u64>(),
        any::<u64>(),
        arb_peer(),
    )
        .prop_map(|(job, model, x, created_ms, deadline_ms, entry)| Manifest {
            job,
            model,
            x,
            created_ms,
            deadline_ms,
            entry,
            aggregators: vec![entry],
        })
}

pub fn arb_claimed() -> impl Strategy<Value = ShardClaimed> {
    (
        arb_job(),
        any::<u32>(),
        any::<u64>(),
        any::<u64>(),
        arb_peer(),
        any::<bool>(),
    )
        .prop_map(
            |(job, shard, claimed_at_ms, lease_expires_ms, claimer, backup)| ShardClaimed {
                job,
                shard,
                claimed_at_ms,
                lease_expires_ms,
                claimer,
                backup,
            },
        )
}

pub fn arb_proved() -> impl Strategy<Value = ShardProved> {
    (
        arb_job(),
        any::<u32>(),
        arb_peer(),
        any::<u32>(),
        any::<u64>(),
        arb_matrix(),
        any::<[u8; 32]>(),
        arb_bytes(64),
    )
        .prop_map(
            |(job, shard, worker, config_id, proved_at_ms, output, commitment, proof)| {
                ShardProved {
                    job,
                    shard,
                    worker,
                    config_id,
                    proved_at_ms,
                    output,
                    commitment,
                    proof,
                }
            },
        )
}

pub fn arb_heartbeat() -> impl Strategy<Value = AggregatorHeartbeat> {
    (
        arb_peer(),
        any::<u64>(),
        any::<(bool, bool, u32)>(),
        prop::collection::vec(any::<u32>(), 0..4),
        any::<(u32, u32)>(),
    )
        .prop_map(
            |(aggregator, sent_at_ms, (a, p, m), config_ids, (l1, l2))| AggregatorHeartbeat {
                aggregator,
                sent_at_ms,
                capabilities: Capabilities {
                    aggregate: a,
                    prove: p,
                    max_concurrent_leases: m,
                    config_ids,
                },
                load: Load {
                    active_leases: l1,
                    pending_aggregations: l2,
                },
            },
        )
}

pub fn arb_reason() -> impl Strategy<Value = FailureReason> {
    prop_oneof![
        Just(FailureReason::DeadlineExpired),
        ".{0,20}".prop_map(|detail| FailureReason::Unprovable { detail }),
        ".{0,20}".prop_map(|detail| FailureReason::InvalidData { detail }),
        ".{0,20}".prop_map(|detail| FailureReason::AggregationFailed { detail }),
        ".{0,20}".prop_map(|detail| FailureReason::Other { detail }),
        ".{0,20}".prop_map(|detail| FailureReason::DataUnavailable { detail }),
    ]
}

pub fn arb_settled() -> impl Strategy<Value = JobSettled> {
    (
        arb_job(),
        arb_peer(),
        any::<(u32, u64)>(),
        any::<[u8; 32]>(),
        prop::option::of(arb_matrix()),
        prop::collection::vec(
            (any::<u32>(), arb_peer()).prop_map(|(shard, worker)| ShardCredit { shard, worker }),
            0..4,
        ),
        arb_bytes(64),
    )
        .prop_map(
            |(job, aggregator, (config_id, settled_at_ms), result_hash, result, credits, s)| {
                JobSettled {
                    job,
                    aggregator,
                    config_id,
                    settled_at_ms,
                    result_hash,
                    result,
                    credits,
                    settlement: s,
                }
            },
        )
}

pub fn arb_failed() -> impl Strategy<Value = JobFailed> {
    (arb_job(), arb_peer(), any::<u64>(), arb_reason()).prop_map(
        |(job, reporter, failed_at_ms, reason)| JobFailed {
            job,
            reporter,
            failed_at_ms,
            reason,
        },
    )
}

pub fn arb_status() -> impl Strategy<Value = JobStatus> {
    prop_oneof![
        Just(JobStatus::Announced),
        any::<(u32, u32, u32)>().prop_map(|(proved, leased, total)| JobStatus::Proving {
            proved,
            leased,
            total
        }),
        any::<u32>().prop_map(|total| JobStatus::Aggregating { total }),
        any::<[u8; 32]>().prop_map(|result_hash| JobStatus::Settled { result_hash }),
        arb_reason().prop_map(|reason| JobStatus::Failed { reason }),
        Just(JobStatus::Expired),
    ]
}

pub fn arb_request() -> impl Strategy<Value = Request> {
    prop_oneof![
        any::<[u8; 32]>().prop_map(|id| Request::FetchChunk(FetchChunk { id: ChunkId(id) })),
        (
            any::<[u8; 32]>(),
            any::<u32>(),
            arb_bytes(64),
            prop::option::of(any::<u64>())
        )
            .prop_map(|(model, cols, x, deadline_ms)| {
                Request::SubmitJob(SubmitJob {
                    submission: Submission::Infer {
                        model: ModelId(model),
                        cols,
                        x,
                    },
                    deadline_ms,
                })
            }),
        arb_model().prop_map(|model| Request::RegisterModel(RegisterModel { model })),
        (any::<[u8; 32]>(), any::<u32>(), arb_bytes(64)).prop_map(|(model, index, data)| {
            Request::UploadChunk(UploadChunk {
                model: ModelId(model),
                index,
                data,
            })
        }),
        any::<[u8; 32]>().prop_map(|m| Request::GetModel(GetModel { model: ModelId(m) })),
        Just(Request::ListModels(ListModels {})),
        arb_job().prop_map(|job| Request::JobStatus(JobStatusRequest { job })),
        any::<(u64, u64)>()
            .prop_map(|(since_ms, cursor)| Request::CatchUp(CatchUp { since_ms, cursor })),
        arb_job().prop_map(|job| Request::GetSettlement(crate::messages::GetSettlement { job })),
        any::<bool>().prop_map(|include_finished| Request::NodeStatus(
            crate::messages::NodeStatusRequest { include_finished }
        )),
    ]
}

pub fn arb_response() -> impl Strategy<Value = Response> {
    prop_oneof![
        (
            any::<[u8; 32]>(),
            prop::collection::vec(any::<u32>(), 0..5),
            any::<u32>()
        )
            .prop_map(|(m, chunks, total_missing)| Response::ModelUpload(
                ModelUploadReply::Missing {
                    model: ModelId(m),
                    chunks,
                    total_missing
                }
            )),
        any::<[u8; 32]>()
            .prop_map(|m| Response::ModelUpload(ModelUploadReply::Complete { model: ModelId(m) })),
        ".{0,30}".prop_map(|reason| Response::ModelUpload(ModelUploadReply::Rejected { reason })),
        (arb_model(), any::<bool>())
            .prop_map(|(model, complete)| Response::Model(ModelReply::Found { model, complete })),
        Just(Response::Model(ModelReply::Unknown)),
        (arb_model(), any::<bool>()).prop_map(|(m, complete)| Response::ModelList(ModelList {
            models: vec![ModelSummary {
                model: m.id(),
                name: m.manifest.name.clone(),
                owner: m.owner(),
                dims: (m.manifest.w.rows, m.manifest.w.cols),
                shards: 3,
                complete,
            }]
        })),
        arb_bytes(64).prop_map(|b| Response::Chunk(ChunkResponse::Found(b))),
        Just(Response::Chunk(ChunkResponse::NotFound)),
        arb_job().prop_map(|job| Response::SubmitResult(SubmitResult::Accepted { job })),
        ".{0,30}".prop_map(|reason| Response::SubmitResult(SubmitResult::Rejected { reason })),
        Just(Response::Status(StatusReply::Unknown)),
        (arb_job(), arb_status(), any::<(u64, u32, u32, u32)>()).prop_map(
            |(job, status, (deadline_ms, t, p, l))| {
                Response::Status(StatusReply::Known(StatusReport {
                    job,
                    status,
                    deadline_ms,
                    shards_total: t,
                    shards_proved: p,
                    shards_leased: l,
                }))
            }
        ),
        (
            prop::collection::vec(arb_bytes(32), 0..4),
            prop::option::of(any::<u64>())
        )
            .prop_map(|(frames, next_cursor)| Response::CatchUp(CatchUpReport {
                frames,
                next_cursor
            })),
        arb_bytes(64)
            .prop_map(|b| Response::Settlement(crate::messages::SettlementReply::Found(b))),
        Just(Response::Settlement(
            crate::messages::SettlementReply::NotSettled
        )),
        (arb_peer(), arb_job(), arb_status(), any::<(u64, u32)>()).prop_map(
            |(node, job, status, (now_ms, index))| {
                Response::NodeStatus(crate::messages::NodeStatusReport {
                    node,
                    now_ms,
                    peers: vec!["12D3KooW".into()],
                    aggregators: vec![node],
                    shard_entries: now_ms,
                    jobs: vec![crate::messages::JobSummary {
                        report: StatusReport {
                            job,
                            status,
                            deadline_ms: now_ms,
                            shards_total: 1,
                            shards_proved: 0,
                            shards_leased: 1,
                        },
                        aggregator: Some(node),
                        entry: node,
                        dims: (index, 2, 1),
                        shards: vec![crate::messages::ShardSummary {
                            index,
                            first_row: 0,
                            end_row: index,
                            state: "leased".into(),
                            owner: Some(node),
                            lease_expires_ms: Some(now_ms),
                        }],
                    }],
                })
            }
        ),
    ]
}
