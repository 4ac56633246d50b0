//! Node configuration: defaults, then a TOML file, then environment variables, then flags.
//!
//! Every option has a TOML key (see `node/config.example.toml`, or `starkscale node
//! --print-config`). A network profile (`--network testnet.toml`) names the network and lists
//! its bootstrap peers, so joining a testnet is one flag.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use libp2p::Multiaddr;
use serde::{Deserialize, Serialize};

use crate::network::GossipParams;
use crate::node::{NodeConfig, DEFAULT_NETWORK};

/// The TOML form of a node's configuration. Missing keys take their defaults.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    /// Address to listen on.
    pub listen: String,
    /// Peers to join through (full addresses ending in /p2p/<peer id>).
    pub bootstrap: Vec<String>,
    /// Data directory: chunks, job records, key file.
    pub data_dir: PathBuf,
    /// ed25519 key file; `<data_dir>/node.key` when absent.
    pub key_file: Option<PathBuf>,
    /// Network name, or the path of a network profile (`*.toml`).
    pub network: String,
    /// Shards proven at once.
    pub capacity: u32,
    /// Prove shards.
    pub prove: bool,
    /// Take part in aggregator elections.
    pub aggregate: bool,
    /// Lease length of a claim, in seconds.
    pub lease_secs: u64,
    /// Default deadline of jobs submitted here, in seconds from submission.
    pub job_deadline_secs: u64,
    /// Target W entries per shard for jobs submitted here.
    pub shard_entries: u64,
    /// Memory for kept proving keys (committed shards of W), in MiB; least recently used
    /// keys are evicted beyond it.
    pub key_cache_mib: u64,
    /// Seconds without a new chunk after which a model upload is abandoned (the model and the
    /// chunks it wrote are removed; registering again starts over).
    pub upload_idle_secs: u64,
    /// Serve Prometheus metrics on this address (`GET /metrics`), e.g. "127.0.0.1:9100".
    pub metrics_listen: Option<String>,
    /// Gossip mesh and size parameters.
    pub gossip: GossipFile,
}

/// Gossip parameters in TOML.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GossipFile {
    /// Target mesh degree.
    pub mesh_n: usize,
    /// Lower mesh bound.
    pub mesh_n_low: usize,
    /// Upper mesh bound.
    pub mesh_n_high: usize,
    /// Heartbeat interval in milliseconds.
    pub heartbeat_ms: u64,
    /// Request-response timeout in seconds.
    pub request_timeout_secs: u64,
}

impl Default for GossipFile {
    fn default() -> Self {
        let g = GossipParams::default();
        Self {
            mesh_n: g.mesh_n,
            mesh_n_low: g.mesh_n_low,
            mesh_n_high: g.mesh_n_high,
            heartbeat_ms: g.heartbeat.as_millis() as u64,
            request_timeout_secs: g.request_timeout.as_secs(),
        }
    }
}

impl Default for FileConfig {
    fn default() -> Self {
        Self {
            listen: "/ip4/0.0.0.0/tcp/7070".into(),
            bootstrap: Vec::new(),
            data_dir: PathBuf::from("./starkscale-data"),
            key_file: None,
            network: DEFAULT_NETWORK.into(),
            capacity: 1,
            prove: true,
            aggregate: true,
            lease_secs: 60,
            job_deadline_secs: 600,
            shard_entries: starkscale_protocol::plan::DEFAULT_TARGET_ENTRIES_PER_SHARD,
            key_cache_mib: 2048,
            upload_idle_secs: 600,
            metrics_listen: None,
            gossip: GossipFile::default(),
        }
    }
}

/// A network profile: the network's name and how to join it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkProfile {
    /// Network name (mixed into every signature).
    pub name: String,
    /// Bootstrap peers.
    #[serde(default)]
    pub bootstrap: Vec<String>,
}

fn read_toml<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{what} {} is not valid: {e}", path.display()))
}

impl FileConfig {
    /// Reads a configuration file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        read_toml(path, "configuration file")
    }

    /// The configuration as TOML (every key, for `--print-config`).
    pub fn to_toml(&self) -> anyhow::Result<String> {
        Ok(toml::to_string_pretty(self)?)
    }

    /// Resolves into a [`NodeConfig`]: parses addresses and applies a network profile.
    pub fn resolve(&self) -> anyhow::Result<NodeConfig> {
        let parse = |s: &str, what: &str| -> anyhow::Result<Multiaddr> {
            s.parse()
                .map_err(|e| anyhow::anyhow!("{what} {s:?} is not a multiaddr: {e}"))
        };
        let mut bootstrap = self
            .bootstrap
            .iter()
            .map(|s| parse(s, "bootstrap address"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let network = if self.network.ends_with(".toml") {
            let profile: NetworkProfile = read_toml(Path::new(&self.network), "network profile")?;
            for s in &profile.bootstrap {
                bootstrap.push(parse(s, "bootstrap address in the network profile")?);
            }
            profile.name
        } else {
            self.network.clone()
        };
        if self.capacity == 0 {
            anyhow::bail!(
                "capacity must be at least 1 (it is the number of shards proven at once)"
            );
        }
        let mut cfg = NodeConfig::new(
            self.data_dir.clone(),
            parse(&self.listen, "listen address")?,
        );
        cfg.bootstrap = bootstrap;
        cfg.key_file = self.key_file.clone();
        cfg.network = network;
        cfg.capacity = self.capacity;
        cfg.prove = self.prove;
        cfg.aggregate = self.aggregate;
        cfg.lease = Duration::from_secs(self.lease_secs.max(1));
        cfg.job_deadline = Duration::from_secs(self.job_deadline_secs.max(10));
        cfg.shard_entries = self.shard_entries.max(1);
        cfg.key_cache_bytes = self.key_cache_mib.saturating_mul(1 << 20);
        cfg.upload_idle = Duration::from_secs(self.upload_idle_secs.max(1));
        cfg.metrics_listen = match &self.metrics_listen {
            Some(a) => Some(a.parse().map_err(|e| {
                anyhow::anyhow!("metrics address {a:?} is not host:port (e.g. 127.0.0.1:9100): {e}")
            })?),
            None => None,
        };
        cfg.gossip = GossipParams {
            mesh_n: self.gossip.mesh_n,
            mesh_n_low: self.gossip.mesh_n_low,
            mesh_n_high: self.gossip.mesh_n_high,
            heartbeat: Duration::from_millis(self.gossip.heartbeat_ms.max(10)),
            request_timeout: Duration::from_secs(self.gossip.request_timeout_secs.max(1)),
            ..GossipParams::default()
        };
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_lists_every_option_and_resolves() {
        let example: FileConfig = toml::from_str(include_str!("../config.example.toml")).unwrap();
        let printed: toml::Table =
            toml::from_str(&FileConfig::default().to_toml().unwrap()).unwrap();
        let listed: toml::Table = toml::from_str(include_str!("../config.example.toml")).unwrap();
        for key in printed.keys() {
            assert!(listed.contains_key(key), "config.example.toml lacks {key}");
        }
        example.resolve().unwrap();
    }

    #[test]
    fn unknown_keys_and_bad_addresses_are_clear_errors() {
        let err = toml::from_str::<FileConfig>("capacityy = 2")
            .unwrap_err()
            .to_string();
        assert!(err.contains("capacityy"), "{err}");
        let cfg = FileConfig {
            listen: "not an address".into(),
            ..FileConfig::default()
        };
        let err = cfg.resolve().unwrap_err().to_string();
        assert!(err.contains("listen address"), "{err}");
    }

    #[test]
    fn a_network_profile_sets_the_name_and_adds_bootstrap_peers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("testnet.toml");
        std::fs::write(
            &path,
            "name = \"starkscale-testnet\"\nbootstrap = [\"/ip4/10.0.0.1/tcp/7070/p2p/12D3KooWDVpMdF637nJ7cFy2RQV1X3H8faL1SNQfBoL77DMBReUk\"]\n",
        )
        .unwrap();
        let cfg = FileConfig {
            network: path.display().to_string(),
            ..FileConfig::default()
        };
        let node = cfg.resolve().unwrap();
        assert_eq!(node.network, "starkscale-testnet");
        assert_eq!(node.bootstrap.len(), 1);
    }
}
