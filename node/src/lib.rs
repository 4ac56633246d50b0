//! The STARKScale node: a libp2p peer that takes jobs, claims and proves shards, checks other
//! peers' proofs and settles jobs; plus the client that submits jobs and verifies results.
//!
//! | module | what lives there |
//! | --- | --- |
//! | [`network`] | transport: the swarm's event loop, typed commands, request-response framing |
//! | [`node`] | application: gossip validation, worker, aggregator, request handlers |
//! | [`settlement`] | the settlement artefact and its offline verification |
//! | [`client`] | `submit`: upload, follow, download, verify |
//! | [`demo`] | an embedded local network for `starkscale demo` and tests |
//! | [`identity`], [`store`], [`db`] | key file, on-disk chunks, the redb state database |
//! | [`config`] | TOML configuration, environment overrides, network profiles |
//! | [`models`] | the owner's setup that signs a model, one-off models, workers' proving keys |
//! | [`limbs`] | wide activations split into byte limbs and recombined |
//! | [`npy`] | NumPy `.npy` integer arrays as job input |
//! | [`tensor`] | weights from `.npy` and Hugging Face `.safetensors` files |
//! | [`metrics`] | Prometheus metrics and the `/metrics` endpoint |
//! | [`progress`] | progress bars for `submit` and `demo` |

pub mod client;
pub mod config;
pub mod convert;
pub mod db;
pub mod demo;
pub mod identity;
pub mod limbs;
pub mod metrics;
pub mod models;
pub mod network;
pub mod node;
pub mod npy;
pub mod progress;
pub mod settlement;
pub mod store;
pub mod tensor;
