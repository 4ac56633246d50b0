//! Faults and cheaters, one deterministic test each: every kind of cheater joins a network of
//! honest nodes, which must still settle the exact, verified product, credit no shard to the
//! cheater and penalise what it sent; crashes of workers and of the elected aggregator; a
//! network split that heals; and a short randomized chaos run.
//!
//! The tests in this file run one at a time (they share two cores and use short leases).

#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use starkscale_node::client;
use starkscale_node::demo::random_job_json;
use starkscale_node::node::now_ms;
use starkscale_protocol::election::rank_aggregators;
use starkscale_protocol::ids::{JobId, PeerKey};
use starkscale_protocol::status::JobStatus;
use starkscale_protocol::{JobLimits, JobSpec};
use starkscale_tests::adversary::{Adversary, Cheat};
use starkscale_tests::chaos::{self, adversary, tune, wait_connected, Cluster, JobEnd};

/// The job id of `spec` submitted to a cluster tuned by [`tune`].
fn id_of(spec: &JobSpec) -> JobId {
    starkscale_tests::job_id(spec, chaos::SHARD_ENTRIES)
}

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const NODES: usize = 4;
const TIMEOUT: Duration = Duration::from_secs(120);

/// A 64 × 64 job (four shards in the fault-test network).
fn job(seed: u64) -> (String, JobSpec) {
    let json = random_job_json(64, 64, seed);
    let spec = JobSpec::from_json_slice(json.as_bytes(), &JobLimits::default()).unwrap();
    (json, spec)
}

async fn cluster(n: usize) -> Cluster {
    let cluster = Cluster::start(n, |_, cfg| tune(cfg)).await.unwrap();
    cluster
        .wait_ready(n, Duration::from_secs(30))
        .await
        .unwrap();
    cluster
}

async fn with_adversary(cluster: &Cluster, cheat: Cheat) -> Adversary {
    let adv = adversary(cluster, cheat, 0xA5).await.unwrap();
    wait_connected(cluster, adv.peer_id, Duration::from_secs(20))
        .await
        .unwrap();
    adv.arm();
    adv
}

/// Submits through node 0 and checks the settled result is the exact product.
async fn settle_exact(cluster: &Cluster, json: &str, spec: &JobSpec) -> client::Outcome {
    let out = client::submit(json.as_bytes(), cluster.addr(0), TIMEOUT, |_| {})
        .await
        .expect("the job settles despite the fault");
    assert_eq!(out.verified.result, spec.reference_product().unwrap());
    out
}

/// Shards credited to `key` in any live node's view of `job`.
async fn credited_to(cluster: &Cluster, job: &JobId, key: &PeerKey) -> usize {
    let mut n = 0;
    for i in cluster.running() {
        let view = cluster.job_view(i, job).await.expect("node knows the job");
        n += view
            .shards
            .iter()
            .filter(|s| s.state == "proved" && s.owner == Some(*key))
            .count();
    }
    n
}

/// (nodes that rejected a message from `adv`, nodes that banned it, proofs refused in all).
async fn penalties(cluster: &Cluster, adv: &Adversary) -> (usize, usize, u64) {
    let (mut rejected, mut banned, mut refused) = (0, 0, 0);
    for i in cluster.running() {
        let h = cluster.node(i).unwrap();
        let (r, p) = {
            let stats = h.stats.lock().unwrap();
            (
                stats.rejects.get(&adv.peer_id).copied().unwrap_or(0),
                stats.proofs_refused,
            )
        };
        rejected += usize::from(r > 0);
        refused += p;
        banned += usize::from(h.net.info().await.unwrap().banned.contains(&adv.peer_id));
    }
    (rejected, banned, refused)
}

/// Runs one job with one cheater of `cheat`'s kind; checks the result, that the cheater is
/// credited nothing, and returns the penalties.
async fn against(cheat: Cheat, seed: u64) -> (usize, usize, u64) {
    let _serial = SERIAL.lock().await;
    let cluster = cluster(NODES).await;
    let adv = with_adversary(&cluster, cheat).await;
    let (json, spec) = job(seed);
    adv.know(&spec);
    let out = settle_exact(&cluster, &json, &spec).await;
    assert!(out.verified.credits.iter().all(|c| c.worker != adv.key));
    assert_eq!(credited_to(&cluster, &id_of(&spec), &adv.key).await, 0);
    assert_ne!(out.verified.aggregator, adv.key);
    // Let late verdicts land.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let penalties = penalties(&cluster, &adv).await;
    let stats = adv.stats();
    adv.shutdown().await;
    cluster.shutdown().await;
    eprintln!(
        "{cheat:?}: {stats:?}; penalties (rejected by, banned by, proofs refused) {penalties:?}"
    );
    penalties
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_output_with_a_proof_for_other_data_is_refused() {
    let (rejected, _, refused) = against(Cheat::WrongOutput, 11).await;
    assert!(refused >= 1 && rejected >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn proof_with_flipped_bytes_is_refused() {
    let (rejected, _, refused) = against(Cheat::FlippedProof, 12).await;
    assert!(refused >= 1 && rejected >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stolen_proof_resigned_by_another_peer_is_refused() {
    let (rejected, _, refused) = against(Cheat::StolenProof, 13).await;
    assert!(refused >= 1 && rejected >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replayed_proof_for_another_shard_or_job_is_refused() {
    let (rejected, _, refused) = against(Cheat::Replay, 14).await;
    assert!(refused >= 1 && rejected >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forged_and_missing_signatures_get_the_sender_banned() {
    let (rejected, banned, _) = against(Cheat::ForgedSignature, 15).await;
    assert!(
        rejected >= 1 && banned >= 1,
        "6 forged frames exceed the 3-reject ban threshold"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_for_shards_that_do_not_exist_get_the_sender_banned() {
    let (rejected, banned, _) = against(Cheat::BogusClaims, 16).await;
    assert!(rejected >= 1 && banned >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_peer_that_claims_everything_and_proves_nothing_only_delays_the_job() {
    let _serial = SERIAL.lock().await;
    let cluster = cluster(NODES).await;
    let adv = with_adversary(&cluster, Cheat::ClaimHog).await;
    let (json, spec) = job(17);
    adv.know(&spec);
    let submit = {
        let (json, addr) = (json.clone(), cluster.addr(0).clone());
        tokio::spawn(async move { client::submit(json.as_bytes(), &addr, TIMEOUT, |_| {}).await })
    };
    // The hog's backdated claims win: some node sees it holding shards. Its leases start at
    // the job's creation, so on a loaded machine they may be short-lived by the time they
    // arrive: look at every node, often.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut held = 0;
    while held == 0 && Instant::now() < deadline {
        for node in 0..NODES {
            if let Some(view) = cluster.job_view(node, &id_of(&spec)).await {
                held += view
                    .shards
                    .iter()
                    .filter(|s| s.state == "leased" && s.owner == Some(adv.key))
                    .count();
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(held >= 1, "the hog's claims should have won leases");
    let out = submit
        .await
        .unwrap()
        .expect("the job settles after the hog's leases lapse");
    assert_eq!(out.verified.result, spec.reference_product().unwrap());
    assert_eq!(credited_to(&cluster, &id_of(&spec), &adv.key).await, 0);
    adv.shutdown().await;
    cluster.shutdown().await;
}

/// Waits until every node counts `adv` as an aggregator candidate, then picks (from seeds
/// `from..`) a job for which it is the elected (first-ranked) aggregator, and tells it the job.
async fn job_led_by(cluster: &Cluster, adv: &Adversary, from: u64) -> (String, JobSpec) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while cluster
        .running()
        .iter()
        .any(|i| cluster.node(*i).unwrap().stats.lock().unwrap().aggregators < NODES + 1)
    {
        assert!(
            Instant::now() < deadline,
            "the cheater's heartbeats did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut keys: Vec<PeerKey> = (0..NODES).map(|i| cluster.key(i)).collect();
    keys.push(adv.key);
    let (json, spec) = (from..)
        .map(job)
        .find(|(_, spec)| rank_aggregators(&id_of(spec), &keys)[0] == adv.key)
        .unwrap();
    adv.know(&spec);
    (json, spec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_elected_aggregator_that_publishes_a_wrong_result_is_refused_and_replaced() {
    let _serial = SERIAL.lock().await;
    let cluster = cluster(NODES).await;
    let adv = with_adversary(&cluster, Cheat::WrongAggregator).await;
    let (json, spec) = job_led_by(&cluster, &adv, 100).await;
    let out = settle_exact(&cluster, &json, &spec).await;
    assert_ne!(out.verified.aggregator, adv.key);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rejected, _, _) = penalties(&cluster, &adv).await;
    assert!(
        adv.stats().settlements_sent >= 1,
        "the cheater settled with a wrong result"
    );
    assert!(rejected >= 1, "its wrong settlement was rejected");
    adv.shutdown().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn floods_of_malformed_oversized_and_absurd_messages_are_refused() {
    let (rejected, banned, _) = against(Cheat::Flood, 18).await;
    assert!(rejected >= 1 && banned >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garbage_chunks_are_refused_and_fetched_from_an_honest_peer() {
    let _serial = SERIAL.lock().await;
    let cluster = cluster(2).await;
    let adv = with_adversary(&cluster, Cheat::Flood).await;
    let (json, spec) = job(19);
    settle_exact(&cluster, &json, &spec).await;
    // A fresh peer (the nodes banned the flooder) fetches X, asking the garbage server first
    // and the entry peer second.
    let (net, mut events, event_loop) = starkscale_node::network::new(
        starkscale_node::identity::Identity::generate()
            .keypair()
            .unwrap(),
        starkscale_node::network::NetConfig {
            listen: vec![],
            bootstrap: vec![adv.address().await.unwrap(), cluster.addr(0).clone()],
            topics: vec![],
            gossip: Default::default(),
            metrics: None,
        },
    )
    .unwrap();
    let loop_task = tokio::spawn(event_loop.run());
    let drain = tokio::spawn(async move { while events.recv().await.is_some() {} });
    let metrics = starkscale_node::metrics::Metrics::new();
    let dir = tempfile::tempdir().unwrap();
    let store = starkscale_node::store::Store::open(dir.path()).unwrap();
    let (_, x) = spec.descriptors();
    let chunks: Vec<_> = x.chunks.iter().copied().enumerate().collect();
    let peers = [adv.peer_id, cluster.peer_id(0)];
    let bytes = starkscale_node::node::fetch_chunks(&net, &store, &peers, &chunks, &metrics)
        .await
        .unwrap();
    assert_eq!(bytes, spec.x_bytes());
    assert!(adv.stats().garbage_chunks_served >= 1);
    // With only the garbage server, the fetch fails and says why.
    let dir = tempfile::tempdir().unwrap();
    let store = starkscale_node::store::Store::open(dir.path()).unwrap();
    let err = starkscale_node::node::fetch_chunks(&net, &store, &[adv.peer_id], &chunks, &metrics)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("bad chunk"), "{err}");
    loop_task.abort();
    drain.abort();
    adv.shutdown().await;
    cluster.shutdown().await;
}

/// Waits for a withholder's own job to be announced and to end failed; returns the job and
/// its status.
async fn withheld_job_fails(cluster: &Cluster, adv: &Adversary) -> (JobId, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while adv.own_jobs().is_empty() {
        assert!(Instant::now() < deadline, "the withholder did not announce");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let job = adv.own_jobs()[0];
    match chaos::wait_terminal(cluster, &job, Duration::from_secs(60)).await {
        JobEnd::Failed(status) => (job, status),
        end => panic!("expected a failed status, got {end:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_whose_data_never_arrives_fails_with_a_clear_status() {
    let _serial = SERIAL.lock().await;
    let cluster = cluster(NODES).await;
    let adv = with_adversary(&cluster, Cheat::WithholdData).await;
    let (_, status) = withheld_job_fails(&cluster, &adv).await;
    assert!(status.contains("unavailable"), "{status}");
    adv.shutdown().await;
    cluster.shutdown().await;
}

/// Polls node `i`'s view of `job` until `pick` finds something in it.
async fn wait_for<T>(
    cluster: &Cluster,
    i: usize,
    job: &JobId,
    mut pick: impl FnMut(&starkscale_protocol::messages::JobSummary) -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(view) = cluster.job_view(i, job).await {
            if let Some(found) = pick(&view) {
                return found;
            }
        }
        assert!(
            Instant::now() < deadline,
            "condition not reached for job {job}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_killed_mid_shard_lose_their_leases_and_others_prove() {
    let _serial = SERIAL.lock().await;
    let mut cluster = cluster(5).await;
    let json = random_job_json(128, 64, 21);
    let spec = JobSpec::from_json_slice(json.as_bytes(), &JobLimits::default()).unwrap();
    let submit = {
        let (json, addr) = (json.clone(), cluster.addr(0).clone());
        tokio::spawn(async move { client::submit(json.as_bytes(), &addr, TIMEOUT, |_| {}).await })
    };
    // Kill the first two workers other than node 0 seen holding a lease.
    let mut killed = BTreeSet::new();
    while killed.len() < 2 {
        let holder = wait_for(&cluster, 0, &id_of(&spec), |v| {
            v.shards
                .iter()
                .filter(|s| s.state == "leased")
                .filter_map(|s| s.owner)
                .find(|o| *o != cluster.key(0) && !killed.contains(o))
        })
        .await;
        let i = (0..cluster.len())
            .find(|i| cluster.key(*i) == holder)
            .unwrap();
        cluster.crash(i).await;
        killed.insert(holder);
    }
    let out = submit
        .await
        .unwrap()
        .expect("the job settles after the leases lapse");
    assert_eq!(out.verified.result, spec.reference_product().unwrap());
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_next_aggregator_takes_over_when_the_elected_one_is_killed() {
    let _serial = SERIAL.lock().await;
    let mut cluster = cluster(NODES).await;
    let keys: Vec<PeerKey> = (0..NODES).map(|i| cluster.key(i)).collect();
    // A job whose elected aggregator is not the entry node.
    let (json, spec) = (200..)
        .map(job)
        .find(|(_, s)| rank_aggregators(&id_of(s), &keys)[0] != keys[0])
        .unwrap();
    let elected = rank_aggregators(&id_of(&spec), &keys)[0];
    let victim = keys.iter().position(|k| *k == elected).unwrap();
    cluster.crash(victim).await;
    let out = settle_exact(&cluster, &json, &spec).await;
    assert_ne!(out.verified.aggregator, elected);
    assert_eq!(
        out.verified.aggregator,
        rank_aggregators(&id_of(&spec), &keys)[1]
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_halves_of_a_split_network_settle_their_jobs_and_agree_after_healing() {
    let _serial = SERIAL.lock().await;
    let cluster = cluster(6).await;
    let (a, b) = ([0, 1, 2], [3, 4, 5]);
    cluster.split(&a, &b).await.unwrap();
    // Each half now only sees itself.
    for i in a.iter().chain(&b) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while cluster
            .node(*i)
            .unwrap()
            .net
            .info()
            .await
            .unwrap()
            .connected
            .len()
            != 2
        {
            assert!(
                Instant::now() < deadline,
                "node {i} still linked across the split"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let (json_a, spec_a) = job(31);
    let (json_b, spec_b) = job(32);
    let (addr_a, addr_b) = (cluster.addr(0).clone(), cluster.addr(3).clone());
    let (out_a, out_b) = tokio::join!(
        client::submit(json_a.as_bytes(), &addr_a, TIMEOUT, |_| {}),
        client::submit(json_b.as_bytes(), &addr_b, TIMEOUT, |_| {}),
    );
    assert_eq!(
        out_a.unwrap().verified.result,
        spec_a.reference_product().unwrap()
    );
    assert_eq!(
        out_b.unwrap().verified.result,
        spec_b.reference_product().unwrap()
    );
    // Neither half has heard of the other's job.
    assert!(cluster.job_view(4, &id_of(&spec_a)).await.is_none());
    assert!(cluster.job_view(1, &id_of(&spec_b)).await.is_none());
    cluster.heal(&a, &b).await.unwrap();
    // After healing, every node learns both settlements.
    let started = now_ms();
    for spec in [&spec_a, &spec_b] {
        let want = starkscale_protocol::messages::result_hash(&spec.reference_product().unwrap());
        for i in 0..6 {
            let settled = wait_for(&cluster, i, &id_of(spec), |v| match v.report.status {
                JobStatus::Settled { result_hash } => Some(result_hash),
                _ => None,
            })
            .await;
            assert_eq!(
                settled,
                want,
                "node {i} settled job {} with another result",
                id_of(spec)
            );
        }
    }
    eprintln!("halves agreed {} ms after healing", now_ms() - started);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn randomized_chaos_scenarios_settle_exact_results_or_fail_clearly() {
    let _serial = SERIAL.lock().await;
    for seed in [1, 6] {
        let report = chaos::run_scenario(seed, chaos::ScenarioParams::default())
            .await
            .unwrap();
        eprintln!("{}", report.line());
        assert!(report.ok(), "{}", report.line());
        assert_eq!(report.bad_proofs_accepted, 0);
        assert_eq!(report.wrong_results_accepted, 0);
    }
}

#[path = "faults/hardening.rs"]
mod hardening;
