//! The attacks of the hardening review (issue 15), one deterministic test each: what a
//! cheater does, and that it no longer works.

use starkscale_node::node::DEFAULT_NETWORK;
use starkscale_node::settlement::{
    check_shard_proof, verify_settlement, verify_settlement_on, Settlement, SettlementError,
    SETTLEMENT_FORMAT,
};
use starkscale_protocol::chunk::chunk_refs;
use starkscale_protocol::codec::Bytes;
use starkscale_protocol::ed25519_dalek::SigningKey;
use starkscale_protocol::ids::NetworkId;
use starkscale_protocol::manifest::{content_job_id, Manifest, ManifestParams};
use starkscale_protocol::matrix::IntMatrix;
use starkscale_protocol::messages::ShardProved;
use starkscale_protocol::validate::{NeedsProofCheck, ProofCheckError, Reason, Verdict};
use starkscale_protocol::SignedEnvelope;

use super::*;

/// A settlement for `spec`'s job signed by `key`, with placeholder shard proofs: enough to
/// reach the checks that come before the proofs.
fn crafted_settlement(spec: &JobSpec, key: &SigningKey) -> Settlement {
    let model = starkscale_node::models::build("crafted", spec.w(), 16, key).unwrap();
    let manifest = Manifest::new(
        model,
        spec.x(),
        ManifestParams {
            created_ms: now_ms(),
            deadline_ms: now_ms() + 60_000,
            entry: PeerKey::from(key),
        },
    )
    .unwrap();
    let shards = manifest.shard_keys().len();
    Settlement {
        format: SETTLEMENT_FORMAT.into(),
        network: NetworkId::from_name(DEFAULT_NETWORK),
        manifest,
        x: spec.x().clone(),
        result: spec.reference_product().unwrap(),
        shard_proofs: vec![Bytes(vec![0; 8]); shards],
        aggregator: PeerKey::from(key),
        settled_at_ms: now_ms(),
    }
}

/// Attack 5: an X entry outside i32 was encoded as `i32::MIN`, so a settlement could carry
/// an X other than the one its manifest hashes (every out-of-range value aliased the same
/// bytes); a manifest could declare a weight bound that makes the exactness product wrap a
/// u128 in release builds; and a node took a settlement signed for another network.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn settlements_with_lossy_x_absurd_bounds_or_another_network_are_refused() {
    let _serial = SERIAL.lock().await;
    let key = SigningKey::from_bytes(&[7; 32]);
    let (_, spec) = job(51);

    // The manifest's X holds i32::MIN at row 3; the settlement's X holds 2^32 + 7 there.
    let mut lossy = crafted_settlement(&spec, &key);
    let mut x = spec.x().data().to_vec();
    x[3] = i64::from(i32::MIN);
    let bytes: Vec<u8> = x.iter().flat_map(|v| (*v as i32).to_le_bytes()).collect();
    lossy.manifest.x.chunks = chunk_refs(&bytes);
    lossy.manifest.job = content_job_id(&lossy.manifest.model_id(), &lossy.manifest.x);
    x[3] = (1 << 32) + 7;
    lossy.x = IntMatrix::new(x.len(), 1, x).unwrap();
    let err = verify_settlement(&lossy.sign(&key).unwrap()).unwrap_err();
    assert!(
        err.to_string()
            .contains("X: vector[3] = 4294967303 is out of range"),
        "{err}"
    );

    // A weight bound of u64::MAX: k · 2^64 · |x| would wrap; the manifest is refused first.
    let mut absurd = crafted_settlement(&spec, &key);
    let mut model = absurd.manifest.model.manifest.clone();
    model.shard_keys[1].weight_bound = u64::MAX;
    absurd.manifest.model = model.sign(&key).unwrap();
    absurd.manifest.job = content_job_id(&absurd.manifest.model_id(), &absurd.manifest.x);
    let err = verify_settlement(&absurd.sign(&key).unwrap()).unwrap_err();
    assert!(
        err.to_string().contains("shard 1 declares max |W|"),
        "{err}"
    );

    // A genuine settlement, checked by a node of another network.
    let cluster = cluster(2).await;
    let (json, spec) = job(52);
    let out = settle_exact(&cluster, &json, &spec).await;
    let home = NetworkId::from_name(DEFAULT_NETWORK);
    assert!(verify_settlement_on(&out.settlement, &home).is_ok());
    let other = NetworkId::from_name("starkscale-elsewhere");
    let err = verify_settlement_on(&out.settlement, &other).unwrap_err();
    assert!(
        matches!(err, SettlementError::Network { expected, found } if expected == other && found == home),
        "{err}"
    );
    cluster.shutdown().await;
}

/// Attack 6: a proof check that failed for a local reason (here: the job names a proving
/// configuration this node does not speak, so it cannot derive the shard's key) was folded
/// into "invalid proof" and Rejected the honest sender. Now the check's error is typed: only
/// a wrong proof rejects; a local failure ignores, for shard proofs and settlements alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_proof_this_node_cannot_check_is_ignored_not_blamed_on_its_sender() {
    let _serial = SERIAL.lock().await;
    let cluster = cluster(2).await;
    let (json, spec) = job(61);
    let out = settle_exact(&cluster, &json, &spec).await;
    cluster.shutdown().await;
    let settlement = verify_settlement(&out.settlement).unwrap().settlement;
    let (manifest, x) = (&settlement.manifest, &settlement.x);
    let home = NetworkId::from_name(DEFAULT_NETWORK);
    let env =
        SignedEnvelope::<ShardProved>::from_frame(&settlement.shard_proofs[0].0, &home).unwrap();
    let msg = env.message().clone();
    let pending = NeedsProofCheck { envelope: env };

    assert!(pending
        .clone()
        .finish(check_shard_proof(manifest, x, &msg))
        .is_accept());
    // Another configuration than this node's: it cannot derive the key. Not the sender's fault.
    let mut foreign = manifest.clone();
    foreign.model.manifest.config_id = starkscale_prover::CONFIG_ID + 1;
    let local = check_shard_proof(&foreign, x, &msg);
    assert!(matches!(local, Err(ProofCheckError::Local(_))), "{local:?}");
    assert!(matches!(
        pending.clone().finish(local),
        Verdict::Ignore(Reason::ProofNotCheckable { .. })
    ));
    // A wrong proof still rejects.
    let mut flipped = msg.clone();
    let at = flipped.proof.0.len() / 2;
    flipped.proof.0[at] ^= 1;
    assert!(matches!(
        pending.finish(check_shard_proof(manifest, x, &flipped)),
        Verdict::Reject(Reason::InvalidProof { .. })
    ));
    // A settlement this node cannot check is a local failure too, not a forged settlement.
    let key = SigningKey::from_bytes(&[9; 32]);
    let mut resettled = settlement.clone();
    // The model's owner (the one-off owner, derived from W) re-signs it for a configuration
    // this node does not speak.
    let mut model = resettled.manifest.model.manifest.clone();
    model.config_id = starkscale_prover::CONFIG_ID + 1;
    let owner = starkscale_node::models::one_off_owner(&spec, model.rows_per_shard);
    resettled.manifest.model = model.sign(&owner).unwrap();
    resettled.manifest.job = content_job_id(&resettled.manifest.model_id(), &resettled.manifest.x);
    resettled.aggregator = PeerKey::from(&key);
    let err = verify_settlement(&resettled.sign(&key).unwrap()).unwrap_err();
    assert!(matches!(err, SettlementError::Local(_)), "{err}");
}

/// Attack 2: a Sybil that advertises the aggregator role, is elected for the job, re-proves
/// every shard with its own key (holding no lease on any) and settles crediting itself: every
/// proof in its settlement verifies, so it was accepted and took every credit. Now credits
/// must match the proof a peer recorded for each shard, or pass the lease rule a gossiped
/// proof passes: its settlements (one at once, one after the honest proofs are in) are
/// refused, and the next rank settles with the honest workers' credits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_elected_sybil_that_settles_with_its_own_proofs_is_credited_nothing() {
    let _serial = SERIAL.lock().await;
    let cluster = cluster(NODES).await;
    let adv = with_adversary(&cluster, Cheat::CreditThief).await;
    let (json, spec) = job_led_by(&cluster, &adv, 300).await;
    let out = settle_exact(&cluster, &json, &spec).await;
    assert_ne!(
        out.verified.aggregator, adv.key,
        "the thief's settlement won"
    );
    assert!(out.verified.credits.iter().all(|c| c.worker != adv.key));
    assert_eq!(credited_to(&cluster, &id_of(&spec), &adv.key).await, 0);
    let stats = adv.stats();
    assert_eq!(stats.proofs_made, out.verified.credits.len() as u64);
    assert!(
        stats.settlements_sent >= 1,
        "the thief settled crediting itself"
    );
    adv.shutdown().await;
    cluster.shutdown().await;
}

/// Attack 1, the grinding half: once a job is announced, the grinder searches for a key that
/// ranks first for it among the candidates it has heard (about H + 1 tries for H candidates),
/// heartbeats once with it and fails the job in its name. Every peer took the failure, and
/// the job could never run again. Now a job's election counts only candidates known before
/// the job was created, and one failure report is not final (it needs a quorum of the first
/// ranks): the job settles.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_ground_to_rank_first_after_the_announcement_cannot_fail_the_job() {
    let _serial = SERIAL.lock().await;
    let cluster = cluster(NODES).await;
    let adv = with_adversary(&cluster, Cheat::Grinder).await;
    // The grinder must have heard the candidates to rank against them.
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    let (json, spec) = job(71);
    settle_exact(&cluster, &json, &spec).await;
    let stats = adv.stats();
    assert_eq!(
        stats.failures_sent, 1,
        "the grinder failed the job: {stats:?}"
    );
    eprintln!("grinder tried {} keys", stats.keys_ground);
    adv.shutdown().await;
    cluster.shutdown().await;
}

/// Attack 1, the other half: a failed job stayed failed forever (job ids come from content
/// and records are kept). Now a failed or expired job can be submitted again: a later
/// announcement of the same content starts a new round. Here the withholder's own job fails
/// (a quorum of ranks each could not fetch its data), then an honest client submits the
/// same content and it settles.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_job_can_be_submitted_again_and_settle() {
    let _serial = SERIAL.lock().await;
    let cluster = cluster(NODES).await;
    let adv = with_adversary(&cluster, Cheat::WithholdData).await;
    let (job, _) = withheld_job_fails(&cluster, &adv).await;
    let json = adv.own_job_json()[0].clone();
    adv.shutdown().await;
    let spec = JobSpec::from_json_slice(json.as_bytes(), &JobLimits::default()).unwrap();
    assert_eq!(id_of(&spec), job);
    let out = settle_exact(&cluster, &json, &spec).await;
    assert_eq!(out.job, job);
    cluster.shutdown().await;
}

/// Attack 8: a client that submits to an address where no node listens, or through a peer
/// that dies before it announces the job, printed nothing and waited its whole `--timeout`.
/// Now a failed dial or a lost connection is an error within seconds naming the address and
/// the cause; and `verify` on a file that is not a settlement says so in words instead of
/// printing a decoder's debug dump.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_reports_an_unreachable_or_vanished_peer_instead_of_waiting() {
    use starkscale_node::network::NetEvent;
    let _serial = SERIAL.lock().await;
    let (json, _) = job(81);
    let patience = Duration::from_secs(120);

    // Nothing listens on a port that was just free.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: libp2p::Multiaddr =
        format!("/ip4/127.0.0.1/tcp/{port}/p2p/{}", libp2p::PeerId::random())
            .parse()
            .unwrap();
    let err = client::submit(json.as_bytes(), &addr, patience, |_| {})
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    eprintln!("{text}");
    assert!(
        text.contains(&format!("could not connect to the peer at {addr}")),
        "{text}"
    );
    assert!(text.to_lowercase().contains("refused"), "{text}");

    // A peer that accepts the connection and dies on the first request.
    let (addr, mut events, loop_task) = bare_peer().await;
    let dies = tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if matches!(event, NetEvent::Request { .. }) {
                break;
            }
        }
        loop_task.abort();
    });
    let err = client::submit(json.as_bytes(), &addr, patience, |_| {})
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    eprintln!("{text}");
    assert!(
        text.contains(&format!("lost the connection to the peer at {addr}")),
        "{text}"
    );
    dies.await.unwrap();

    // `verify` on something that is not a settlement.
    let err = verify_settlement(b"just some text, not a settlement").unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("this is not a valid STARKScale settlement: "),
        "{text}"
    );
    assert!(
        !text.contains('{') && !text.contains("Unexpected"),
        "{text}"
    );
}

/// Attack 3: catch-up pages were followed while the responder's cursor grew (each page up to
/// 64 MiB), and invalid replayed frames were never penalised. Here one peer answers every
/// catch-up with valid but useless pages and always offers one more; another with invalid
/// frames. Now each catch-up from a peer follows at most `CatchUpBudget::max_pages` pages
/// (and bytes), and an invalid replayed frame counts against its sender like invalid gossip.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn endless_or_invalid_catch_up_pages_are_cut_off_and_penalised() {
    use starkscale_protocol::catchup::CatchUpBudget;
    use starkscale_tests::adversary::AdversaryConfig;
    let _serial = SERIAL.lock().await;
    let cluster = cluster(NODES).await;
    let mut advs = Vec::new();
    for (cheat, seed) in [(Cheat::CatchUpFlood, 0xC1), (Cheat::CatchUpGarbage, 0xC2)] {
        // Armed before it connects, so that every node's first catch-up reaches it.
        let adv = starkscale_tests::adversary::Adversary::start(AdversaryConfig {
            seed: [seed; 32],
            cheat,
            network: DEFAULT_NETWORK.into(),
            bootstrap: vec![],
            lease: chaos::LEASE,
            max_lease: chaos::MAX_LEASE,
            max_leases_per_job: chaos::rules().max_leases_per_peer,
        })
        .await
        .unwrap();
        adv.arm();
        for addr in cluster.addrs() {
            adv.net.dial(addr).await.unwrap();
        }
        advs.push(adv);
    }
    let (flood, garbage) = (&advs[0], &advs[1]);
    // Every node bans the garbage server after its first page.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, banned, _) = penalties(&cluster, garbage).await;
        if banned == NODES {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{banned} of {NODES} nodes banned the invalid catch-up server; pages served {}",
            garbage.stats().catch_up_pages_served
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The endless server is followed for at most the budget's pages per catch-up.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let served = flood.stats().catch_up_pages_served;
    let cap = u64::from(CatchUpBudget::default().max_pages) * NODES as u64;
    eprintln!("endless catch-up: {served} pages served to {NODES} nodes (cap {cap})");
    // One catch-up per connection; a node may reconnect once.
    assert!(served >= 1 && served <= 2 * cap, "{served} pages served");
    for adv in advs {
        adv.shutdown().await;
    }
    cluster.shutdown().await;
}

/// Attack 7: gossipsub's own peer scoring was off, so only the node's reject count judged a
/// peer. Now every topic has score parameters (invalid messages penalised, the proof topic
/// weighing most): a peer flooding malformed messages sees its gossipsub score fall below
/// zero at the nodes it floods.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flooding_peer_has_its_gossipsub_score_fall() {
    let _serial = SERIAL.lock().await;
    let cluster = cluster(NODES).await;
    let adv = with_adversary(&cluster, Cheat::Flood).await;
    let (json, spec) = job(91);
    adv.know(&spec);
    settle_exact(&cluster, &json, &spec).await;
    let mut scores = Vec::new();
    for i in cluster.running() {
        let net = &cluster.node(i).unwrap().net;
        scores.push(net.peer_score(adv.peer_id).await.unwrap());
    }
    eprintln!("flooder's score at each node: {scores:?}");
    assert!(
        scores.iter().any(|s| s.is_some_and(|s| s < 0.0)),
        "{scores:?}"
    );
    // Honest peers keep a score of zero or more.
    let honest = cluster
        .node(0)
        .unwrap()
        .net
        .peer_score(cluster.peer_id(1))
        .await
        .unwrap();
    assert!(honest.is_some_and(|s| s >= 0.0), "{honest:?}");
    adv.shutdown().await;
    cluster.shutdown().await;
}

/// Attack 4: submission exhaustion. Any peer could send job JSON up to the submission limit,
/// parsed into a generic JSON tree (gigabytes for a body at the limit), and every submission
/// was prepared at once with no bound. Here a peer floods every node with oversized, deeply
/// nested, huge-array and valid-but-unprovable submissions, a dozen at a time, again as soon
/// as they are answered. Now the parse keeps only accepted entries, a node prepares at most
/// two submissions at once and holds at most two per peer, and a peer over 10 per minute is
/// refused: the flooder gets refusals, the entry peer keeps answering, and an honest job
/// submitted meanwhile settles exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_submission_flood_is_refused_and_an_honest_job_still_settles() {
    let _serial = SERIAL.lock().await;
    let cluster = cluster(NODES).await;
    let adv = with_adversary(&cluster, Cheat::SubmitFlood).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while adv.stats().submission_answers.values().sum::<u64>() < 12 {
        assert!(Instant::now() < deadline, "the flood did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (json, spec) = job(101);
    settle_exact(&cluster, &json, &spec).await;
    let report = client::node_status(cluster.addr(0), false, Duration::from_secs(10))
        .await
        .expect("the entry peer answers during the flood");
    assert!(!report.peers.is_empty());
    let stats = adv.stats();
    eprintln!(
        "flooder sent {} submissions: {:?}",
        stats.submissions_sent, stats.submission_answers
    );
    let answers = |kind: &str| stats.submission_answers.get(kind).copied().unwrap_or(0);
    assert!(answers("refused: rate") >= 1, "{stats:?}");
    assert!(answers("refused: invalid") >= 1, "{stats:?}");
    assert_eq!(answers("accepted"), 0, "{stats:?}");
    adv.shutdown().await;
    cluster.shutdown().await;
}

/// Attack 8, the follow-through: a client whose entry peer was lost after accepting the job
/// failed, though the job was announced and settling elsewhere. Now it follows the job
/// through another peer it can reach (named by the entry peer after acceptance, or found by
/// its own network) and gets the verified result there. The entry peer here neither proves
/// nor aggregates, and is shut down once another peer has proved a shard (so the job's data
/// is held elsewhere).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_follows_its_job_through_another_peer_when_the_entry_peer_is_lost() {
    const ENTRY: usize = NODES - 1;
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::start(NODES, |i, cfg| {
        tune(cfg);
        if i == ENTRY {
            cfg.prove = false;
            cfg.aggregate = false;
        }
    })
    .await
    .unwrap();
    cluster
        .wait_ready(NODES - 1, Duration::from_secs(30))
        .await
        .unwrap();
    // 16 shards for 3 provers: the job is still running when the first proof is in.
    let json = random_job_json(256, 64, 121);
    let spec = JobSpec::from_json_slice(json.as_bytes(), &JobLimits::default()).unwrap();
    let entry = cluster.addr(ENTRY).clone();
    let submit = {
        let json = json.clone();
        tokio::spawn(async move { client::submit(json.as_bytes(), &entry, TIMEOUT, |_| {}).await })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let proved = match cluster.job_view(0, &id_of(&spec)).await {
            Some(view) => view.shards.iter().filter(|s| s.state == "proved").count(),
            None => 0,
        };
        if proved >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "no shard was proved");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.crash(ENTRY).await;
    let out = submit
        .await
        .unwrap()
        .expect("the client follows the job through another peer");
    assert_eq!(out.verified.result, spec.reference_product().unwrap());
    let via = out
        .followed_via
        .expect("the job was followed through another peer");
    assert_ne!(via, cluster.peer_id(ENTRY));
    eprintln!("followed through {via} in {:?}", out.elapsed);
    cluster.shutdown().await;
}

/// Attack 8, the silent peer and the network name: a peer that accepts the connection and
/// never answers cost the client about two minutes (a 60 s request timeout, retried); now
/// it is an error within seconds naming the peer and what was asked. And a settlement made
/// on another network is refused by the client, saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silent_peer_or_a_settlement_of_another_network_is_a_clear_error() {
    use starkscale_node::network::NetEvent;
    let _serial = SERIAL.lock().await;
    // A peer that takes requests and never answers them (it keeps every channel open).
    let (addr, mut events, loop_task) = bare_peer().await;
    let silent = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Some(event) = events.recv().await {
            if let NetEvent::Request { channel, .. } = event {
                open.push(channel);
            }
        }
    });
    let err = client::node_status(&addr, false, Duration::from_secs(600))
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    eprintln!("{text}");
    assert!(
        text.contains(&format!(
            "the peer at {addr} did not answer a node status query: no answer within"
        )),
        "{text}"
    );
    loop_task.abort();
    silent.abort();

    // A settlement of the default network, checked by a client of another.
    let cluster = cluster(2).await;
    let (json, spec) = job(131);
    let out = settle_exact(&cluster, &json, &spec).await;
    cluster.shutdown().await;
    let home = NetworkId::from_name(DEFAULT_NETWORK);
    assert!(client::verify_for_model(&out.settlement, &out.model, Some(spec.x()), &home).is_ok());
    let elsewhere = NetworkId::from_name("starkscale-elsewhere");
    let err = client::verify_for_model(&out.settlement, &out.model, Some(spec.x()), &elsewhere)
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.starts_with("this settlement was made on another network"),
        "{text}"
    );
    assert!(text.contains("--network"), "{text}");
}

/// A bare libp2p peer on loopback that serves nothing by itself: its full address, its
/// events (the test decides what it does with requests) and its event loop's task.
async fn bare_peer() -> (
    libp2p::Multiaddr,
    tokio::sync::mpsc::Receiver<starkscale_node::network::NetEvent>,
    tokio::task::JoinHandle<()>,
) {
    use starkscale_node::network::{self, NetConfig};
    let identity = starkscale_node::identity::Identity::generate();
    let (net, events, event_loop) = network::new(
        identity.keypair().unwrap(),
        NetConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            bootstrap: vec![],
            topics: vec![],
            gossip: Default::default(),
            metrics: None,
        },
    )
    .unwrap();
    // The loop runs while a client handle lives: the task keeps one.
    let handle = net.clone();
    let loop_task = tokio::spawn(async move {
        let _handle = handle;
        event_loop.run().await;
    });
    loop {
        if let Some(addr) = net.info().await.unwrap().listen_addrs.into_iter().next() {
            let addr = addr.with(libp2p::multiaddr::Protocol::P2p(net.peer_id()));
            return (addr, events, loop_task);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
