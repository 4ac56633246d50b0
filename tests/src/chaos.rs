//! The chaos harness: a seeded scenario runner that starts a network of real nodes (in one
//! process, real libp2p swarms over loopback), gives peers roles (honest, crashing, each kind
//! of cheater), runs jobs and checks every outcome.
//!
//! A scenario is a pure function of its seed: roles, cheat kinds, jobs, crash times and
//! restarts are all drawn from it (the network's timing is not, so runs of one seed differ in
//! detail, not in what they check).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId};
use rand::{Rng, SeedableRng};
use starkscale_node::client;
use starkscale_node::demo::random_job_json;
use starkscale_node::node::{self, NodeConfig, NodeHandle};
use starkscale_protocol::election::rank_aggregators;
use starkscale_protocol::ids::{JobId, PeerKey};
use starkscale_protocol::lease::LeaseRules;
use starkscale_protocol::messages::{result_hash, JobSummary};
use starkscale_protocol::status::{JobStatus, SettlePolicy};
use starkscale_protocol::{JobLimits, JobSpec};

use crate::adversary::{Adversary, AdversaryConfig, Cheat};

/// Lease asked for by honest workers in fault tests.
pub const LEASE: Duration = Duration::from_secs(3);
/// Longest lease the fault-test network allows.
pub const MAX_LEASE: Duration = Duration::from_secs(6);

/// Lease rules of the fault-test network (short leases so crashes and hogs cost seconds).
pub fn rules() -> LeaseRules {
    LeaseRules {
        max_lease_ms: MAX_LEASE.as_millis() as u64,
        ..LeaseRules::default()
    }
}

/// Settlement timing of the fault-test network (takeover 3 s after the last proof).
pub fn settle_policy() -> SettlePolicy {
    SettlePolicy {
        step_ms: 3_000,
        grace_ms: 10_000,
    }
}

/// Configures a node for the fault-test network.
pub fn tune(cfg: &mut NodeConfig) {
    cfg.lease = LEASE;
    cfg.rules = rules();
    cfg.settle = settle_policy();
    cfg.job_deadline = Duration::from_secs(90);
    // Jobs of a few thousand entries split into several shards.
    cfg.shard_entries = SHARD_ENTRIES;
}

/// Target W entries per shard of the scenarios' jobs.
pub const SHARD_ENTRIES: u64 = 1 << 10;

/// Nodes that can be crashed and restarted (same data directory and key).
pub struct Cluster {
    slots: Vec<Slot>,
    dir: PathBuf,
}

struct Slot {
    cfg: NodeConfig,
    handle: Option<NodeHandle>,
    addr: Multiaddr,
    key: PeerKey,
    peer_id: PeerId,
}

impl Cluster {
    /// Starts `n` nodes, each bootstrapped to the ones before it, configured by `tune`.
    pub async fn start(n: usize, tune: impl Fn(usize, &mut NodeConfig)) -> anyhow::Result<Self> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "starkscale-chaos-{}-{}-{}",
            std::process::id(),
            node::now_ms(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let mut cluster = Self {
            slots: Vec::new(),
            dir,
        };
        for i in 0..n {
            let mut cfg = NodeConfig::new(
                cluster.dir.join(format!("node{i}")),
                "/ip4/127.0.0.1/tcp/0".parse()?,
            );
            cfg.bootstrap = cluster.slots.iter().map(|s| s.addr.clone()).collect();
            tune(i, &mut cfg);
            let handle = node::start(cfg.clone()).await?;
            let addr = first_addr(&handle).await?;
            // Restarts listen where the node did before, so peers' address books stay right.
            cfg.listen = vec![addr.iter().take(2).collect()];
            cluster.slots.push(Slot {
                key: handle.key,
                peer_id: handle.peer_id,
                cfg,
                handle: Some(handle),
                addr,
            });
        }
        Ok(cluster)
    }

    /// Waits until every running node is connected to every other running node and knows
    /// `aggregators` aggregators.
    pub async fn wait_ready(&self, aggregators: usize, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let running = self.running().len();
        loop {
            let mut ready = true;
            for slot in &self.slots {
                let Some(h) = &slot.handle else { continue };
                let info = h.net.info().await?;
                let known = h.stats.lock().map(|s| s.aggregators).unwrap_or(0);
                if info.connected.len() + 1 < running || known < aggregators {
                    ready = false;
                }
            }
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                anyhow::bail!("cluster of {running} nodes did not form within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Number of nodes (running or not).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Indices of running nodes.
    pub fn running(&self) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|i| self.slots[*i].handle.is_some())
            .collect()
    }

    /// Full address of node `i`.
    pub fn addr(&self, i: usize) -> &Multiaddr {
        &self.slots[i].addr
    }

    /// Every node's address.
    pub fn addrs(&self) -> Vec<Multiaddr> {
        self.slots.iter().map(|s| s.addr.clone()).collect()
    }

    /// Protocol key of node `i`.
    pub fn key(&self, i: usize) -> PeerKey {
        self.slots[i].key
    }

    /// libp2p peer id of node `i`.
    pub fn peer_id(&self, i: usize) -> PeerId {
        self.slots[i].peer_id
    }

    /// The handle of node `i` if it is running.
    pub fn node(&self, i: usize) -> Option<&NodeHandle> {
        self.slots[i].handle.as_ref()
    }

    /// Stops node `i` abruptly (its task is dropped mid-work; what it committed to its
    /// database stays).
    pub async fn crash(&mut self, i: usize) {
        if let Some(h) = self.slots[i].handle.take() {
            h.shutdown().await;
        }
    }

    /// Starts node `i` again from its data directory.
    pub async fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        if self.slots[i].handle.is_some() {
            return Ok(());
        }
        let mut cfg = self.slots[i].cfg.clone();
        cfg.bootstrap = self
            .slots
            .iter()
            .enumerate()
            .filter(|(j, s)| *j != i && s.handle.is_some())
            .map(|(_, s)| s.addr.clone())
            .collect();
        self.slots[i].handle = Some(node::start(cfg).await?);
        Ok(())
    }

    /// Cuts every link between `a` and `b` (both directions refuse the other side).
    pub async fn split(&self, a: &[usize], b: &[usize]) -> anyhow::Result<()> {
        for (x, y) in a.iter().flat_map(|x| b.iter().map(move |y| (*x, *y))) {
            if let Some(h) = self.node(x) {
                h.net.ban(self.peer_id(y)).await?;
            }
            if let Some(h) = self.node(y) {
                h.net.ban(self.peer_id(x)).await?;
            }
        }
        Ok(())
    }

    /// Restores every link cut by [`Cluster::split`].
    pub async fn heal(&self, a: &[usize], b: &[usize]) -> anyhow::Result<()> {
        for (x, y) in a.iter().flat_map(|x| b.iter().map(move |y| (*x, *y))) {
            if let Some(h) = self.node(y) {
                h.net.unblock(self.peer_id(x)).await?;
            }
            if let Some(h) = self.node(x) {
                h.net.unblock(self.peer_id(y)).await?;
            }
        }
        Ok(())
    }

    /// Asks node `i` for its view of `job` (None if it is down or does not know the job).
    pub async fn job_view(&self, i: usize, job: &JobId) -> Option<JobSummary> {
        self.node(i)?;
        let report = client::node_status(self.addr(i), true, Duration::from_secs(10))
            .await
            .ok()?;
        report.jobs.into_iter().find(|j| j.report.job == *job)
    }

    /// Stops every node and removes the data directories.
    pub async fn shutdown(mut self) {
        for i in 0..self.slots.len() {
            self.crash(i).await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn first_addr(handle: &NodeHandle) -> anyhow::Result<Multiaddr> {
    handle
        .addresses()
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("node has no address"))
}

/// An adversary joined to every node of `cluster`.
pub async fn adversary(cluster: &Cluster, cheat: Cheat, seed: u8) -> anyhow::Result<Adversary> {
    Adversary::start(AdversaryConfig {
        seed: [seed; 32],
        cheat,
        network: node::DEFAULT_NETWORK.into(),
        bootstrap: cluster.addrs(),
        lease: LEASE,
        max_lease: MAX_LEASE,
        max_leases_per_job: rules().max_leases_per_peer,
    })
    .await
}

/// Waits until `peer` is connected to every running node of `cluster`.
pub async fn wait_connected(
    cluster: &Cluster,
    peer: PeerId,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut all = true;
        for i in cluster.running() {
            if let Some(h) = cluster.node(i) {
                if !h.net.info().await?.connected.contains(&peer) {
                    all = false;
                }
            }
        }
        if all {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!("peer {peer} did not connect to every node within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How a job ended, as the harness judged it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobEnd {
    /// Settled; the client verified the settlement and the result equals the native product.
    Exact,
    /// Settled with a result other than the product (must never happen).
    Wrong,
    /// Ended with a failed or expired status; the message the client got.
    Failed(String),
    /// Neither settled nor failed in time (must never happen).
    Stuck(String),
}

/// What one scenario showed.
#[derive(Clone, Debug, Default)]
pub struct ScenarioReport {
    /// Its seed.
    pub seed: u64,
    /// Workers (nodes and adversaries).
    pub workers: usize,
    /// Crashing nodes, and how many of them restarted.
    pub crashed: usize,
    /// Of which restarted.
    pub restarted: usize,
    /// Whether the first job's elected aggregator was among the crashed.
    pub aggregator_crashed: bool,
    /// Cheaters by kind.
    pub cheaters: Vec<Cheat>,
    /// Submitted jobs' ends, with time to settle.
    pub jobs: Vec<(JobEnd, Duration)>,
    /// Jobs announced by a cheater that withholds their data, and how they ended.
    pub withheld: Vec<JobEnd>,
    /// Shards credited to a cheater in any live honest node's view (must be 0).
    pub bad_proofs_accepted: usize,
    /// Live honest nodes whose view of a job is settled with a wrong result hash (must be 0).
    pub wrong_results_accepted: usize,
    /// Cheaters that at least one honest node rejected a message from.
    pub penalised: usize,
    /// Cheaters that at least one honest node banned.
    pub banned: usize,
    /// Cheaters whose cheat sends rejectable messages (proofs, settlements, bad frames).
    pub penalisable: usize,
    /// Invalid shard proofs refused, summed over honest nodes.
    pub proofs_refused: u64,
}

impl ScenarioReport {
    /// Whether every invariant held: no bad proof or wrong result accepted, every job settled
    /// exactly or failed with a clear status.
    pub fn ok(&self) -> bool {
        self.bad_proofs_accepted == 0
            && self.wrong_results_accepted == 0
            && self
                .jobs
                .iter()
                .map(|(e, _)| e)
                .chain(&self.withheld)
                .all(|e| matches!(e, JobEnd::Exact | JobEnd::Failed(_)))
    }

    /// One line for the scenario.
    pub fn line(&self) -> String {
        let exact = self
            .jobs
            .iter()
            .filter(|(e, _)| *e == JobEnd::Exact)
            .count();
        let times: Vec<String> = self
            .jobs
            .iter()
            .map(|(_, t)| format!("{:.1}", t.as_secs_f64()))
            .collect();
        let kinds: Vec<String> = self.cheaters.iter().map(|c| format!("{c:?}")).collect();
        format!(
            "seed {:>4}: {:>2} workers, {} crashed ({} restarted{}), cheaters [{}]; jobs {}/{} exact in [{}] s, withheld {:?}; bad proofs accepted {}, wrong results {}, penalised {}/{} (banned {}), proofs refused {} -> {}",
            self.seed,
            self.workers,
            self.crashed,
            self.restarted,
            if self.aggregator_crashed { ", incl. the elected aggregator" } else { "" },
            kinds.join(" "),
            exact,
            self.jobs.len(),
            times.join(" "),
            self.withheld,
            self.bad_proofs_accepted,
            self.wrong_results_accepted,
            self.penalised,
            self.penalisable,
            self.banned,
            self.proofs_refused,
            if self.ok() { "ok" } else { "VIOLATION" }
        )
    }
}

/// Shape of a randomized scenario.
#[derive(Clone, Copy, Debug)]
pub struct ScenarioParams {
    /// Fewest and most workers (nodes that prove plus cheaters).
    pub workers: (usize, usize),
    /// Share of workers that crash.
    pub crash_share: f64,
    /// Share of workers that cheat.
    pub cheat_share: f64,
    /// Jobs submitted.
    pub jobs: usize,
    /// How long the client waits for each job.
    pub job_timeout: Duration,
}

impl Default for ScenarioParams {
    fn default() -> Self {
        Self {
            workers: (8, 12),
            crash_share: 1.0 / 3.0,
            cheat_share: 1.0 / 4.0,
            jobs: 2,
            job_timeout: Duration::from_secs(150),
        }
    }
}

/// Runs one randomized scenario.
pub async fn run_scenario(seed: u64, params: ScenarioParams) -> anyhow::Result<ScenarioReport> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let workers = rng.gen_range(params.workers.0..=params.workers.1);
    let crashers = (workers as f64 * params.crash_share).round() as usize;
    let cheaters = (workers as f64 * params.cheat_share).round() as usize;
    let nodes = workers - cheaters;
    let mut kinds = Vec::new();
    for _ in 0..cheaters {
        let all = [&Cheat::ALL[..], &[Cheat::WithholdData]].concat();
        kinds.push(all[rng.gen_range(0..all.len())]);
    }
    let mut report = ScenarioReport {
        seed,
        workers,
        cheaters: kinds.clone(),
        ..Default::default()
    };

    let mut cluster = Cluster::start(nodes, |_, cfg| tune(cfg)).await?;
    cluster.wait_ready(nodes, Duration::from_secs(30)).await?;
    let mut adversaries = Vec::new();
    for (i, cheat) in kinds.iter().enumerate() {
        let adv = adversary(
            &cluster,
            *cheat,
            seed as u8 ^ (i as u8 + 1).wrapping_mul(37),
        )
        .await?;
        adversaries.push(adv);
    }
    for adv in &adversaries {
        wait_connected(&cluster, adv.peer_id, Duration::from_secs(20)).await?;
    }
    for adv in &adversaries {
        adv.arm();
    }
    // Aggregator-role cheaters must be heard before the jobs start to be electable.
    tokio::time::sleep(Duration::from_millis(600)).await;

    // Jobs: small int8 matrix × vector products, submitted through node 0 (the user's peer,
    // which never crashes).
    let specs: Vec<(String, JobSpec)> = (0..params.jobs)
        .map(|j| {
            let m = rng.gen_range(24..=96);
            let k = rng.gen_range(32..=128);
            let json = random_job_json(m, k, seed * 1000 + j as u64);
            let spec = JobSpec::from_json_slice(json.as_bytes(), &JobLimits::default())?;
            Ok((json, spec))
        })
        .collect::<anyhow::Result<_>>()?;
    for adv in &adversaries {
        for (_, spec) in &specs {
            adv.know(spec);
        }
    }

    // Crash plan: nodes 1.. may crash; the first job's elected aggregator is among the crashed
    // in about half of the scenarios.
    let keys: Vec<PeerKey> = (0..nodes).map(|i| cluster.key(i)).collect();
    let mut candidates: Vec<usize> = (1..nodes).collect();
    let mut crash_set = Vec::new();
    if rng.gen_bool(0.5) {
        let ranked = rank_aggregators(&crate::job_id(&specs[0].1, SHARD_ENTRIES), &keys);
        if let Some(first) = ranked
            .first()
            .and_then(|k| keys.iter().position(|x| x == k))
        {
            if first != 0 && crashers > 0 {
                crash_set.push(first);
                candidates.retain(|c| *c != first);
                report.aggregator_crashed = true;
            }
        }
    }
    while crash_set.len() < crashers.min(nodes - 1) {
        let pick = candidates.remove(rng.gen_range(0..candidates.len()));
        crash_set.push(pick);
    }
    // (node, crash after, restart after crash)
    let plan: Vec<(usize, Duration, Option<Duration>)> = crash_set
        .iter()
        .map(|i| {
            let at = Duration::from_millis(rng.gen_range(100..3_000));
            let back = rng
                .gen_bool(0.5)
                .then(|| Duration::from_millis(rng.gen_range(500..3_000)));
            (*i, at, back)
        })
        .collect();
    report.crashed = plan.len();
    report.restarted = plan.iter().filter(|p| p.2.is_some()).count();

    let entry = cluster.addr(0).clone();
    let submissions: Vec<_> = specs
        .iter()
        .map(|(json, _)| {
            let (json, entry) = (json.clone(), entry.clone());
            tokio::spawn(async move {
                client::submit(json.as_bytes(), &entry, params.job_timeout, |_| {}).await
            })
        })
        .collect();
    let start = Instant::now();
    let mut events: Vec<(Duration, usize, bool)> = Vec::new();
    for (i, at, back) in &plan {
        events.push((*at, *i, false));
        if let Some(b) = back {
            events.push((*at + *b, *i, true));
        }
    }
    events.sort();
    for (at, i, up) in events {
        tokio::time::sleep(at.saturating_sub(start.elapsed())).await;
        if up {
            cluster.restart(i).await?;
        } else {
            cluster.crash(i).await;
        }
    }

    let expected: Vec<[u8; 32]> = specs
        .iter()
        .map(|(_, s)| s.reference_product().map(|y| result_hash(&y)))
        .collect::<Result<_, _>>()?;
    for (handle, (_, spec)) in submissions.into_iter().zip(&specs) {
        let end = match handle.await? {
            Ok(out) => {
                let exact = spec.reference_product()? == out.verified.result;
                (
                    if exact { JobEnd::Exact } else { JobEnd::Wrong },
                    out.elapsed,
                )
            }
            Err(e) => {
                let msg = format!("{e:#}");
                let end = if msg.contains("failed:") || msg.contains("expired") {
                    JobEnd::Failed(msg)
                } else {
                    JobEnd::Stuck(msg)
                };
                (end, start.elapsed())
            }
        };
        report.jobs.push(end);
    }

    // Jobs of data-withholding cheaters must end with a clear failed status.
    for adv in &adversaries {
        for job in adv.own_jobs() {
            report
                .withheld
                .push(wait_terminal(&cluster, &job, Duration::from_secs(60)).await);
        }
    }

    // Every live node's view: no shard credited to a cheater, no settled job with a result
    // other than the product.
    let cheater_keys: BTreeSet<PeerKey> = adversaries.iter().map(|a| a.key).collect();
    for i in cluster.running() {
        for ((_, spec), want) in specs.iter().zip(&expected) {
            let Some(view) = cluster
                .job_view(i, &crate::job_id(spec, SHARD_ENTRIES))
                .await
            else {
                continue;
            };
            report.bad_proofs_accepted += view
                .shards
                .iter()
                .filter(|s| {
                    s.state == "proved" && s.owner.is_some_and(|o| cheater_keys.contains(&o))
                })
                .count();
            if let JobStatus::Settled { result_hash } = view.report.status {
                if result_hash != *want {
                    report.wrong_results_accepted += 1;
                }
            }
        }
        if let Some(h) = cluster.node(i) {
            report.proofs_refused += h.stats.lock().map(|s| s.proofs_refused).unwrap_or(0);
        }
    }
    let mut rejected_by: BTreeMap<PeerId, usize> = BTreeMap::new();
    let mut banned_by: BTreeMap<PeerId, usize> = BTreeMap::new();
    for i in cluster.running() {
        let Some(h) = cluster.node(i) else { continue };
        if let Ok(stats) = h.stats.lock() {
            for (peer, n) in &stats.rejects {
                if *n > 0 {
                    *rejected_by.entry(*peer).or_default() += 1;
                }
            }
        }
        for peer in h.net.info().await?.banned {
            *banned_by.entry(peer).or_default() += 1;
        }
    }
    for adv in &adversaries {
        if adv.cheat.is_penalisable() {
            report.penalisable += 1;
        }
        if rejected_by.contains_key(&adv.peer_id) {
            report.penalised += 1;
        }
        if banned_by.contains_key(&adv.peer_id) {
            report.banned += 1;
        }
    }
    for adv in adversaries {
        adv.shutdown().await;
    }
    cluster.shutdown().await;
    Ok(report)
}

/// Waits until the live nodes that know `job` all report it over; returns how it ended.
pub async fn wait_terminal(cluster: &Cluster, job: &JobId, timeout: Duration) -> JobEnd {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no live node knows the job");
    while Instant::now() < deadline {
        let mut views = Vec::new();
        for i in cluster.running() {
            if let Some(view) = cluster.job_view(i, job).await {
                views.push(view.report.status);
            }
        }
        if let Some(first) = views.first() {
            last = first.to_string();
            if views.iter().all(|s| s.is_terminal()) {
                return match first {
                    JobStatus::Failed { .. } | JobStatus::Expired => JobEnd::Failed(last),
                    _ => JobEnd::Stuck(format!("a job with withheld data ended {last}")),
                };
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    JobEnd::Stuck(format!("still {last} after {timeout:?}"))
}
