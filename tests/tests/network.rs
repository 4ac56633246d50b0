//! Multi-node tests on real libp2p swarms over loopback TCP: jobs run end to end.

#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeSet;
use std::time::Duration;

use starkscale_node::client::Session;
use starkscale_node::demo::{random_job_json, SEED_JOB, SEED_PRODUCT};
use starkscale_protocol::codec::Bytes;
use starkscale_protocol::messages::{Request, Response, Submission, SubmitJob, SubmitResult};
use starkscale_protocol::{JobLimits, JobSpec};
use starkscale_tests::{build_network, submit};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_job_settles_with_the_known_verified_product() {
    let net = build_network(3, |_, _| {}).await.unwrap();
    let out = submit(&net, 1, SEED_JOB, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(out.verified.result.data(), &SEED_PRODUCT);
    assert_eq!(out.verified.credits.len(), 1);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1024_square_job_is_split_over_four_shards_and_three_workers() {
    let net = build_network(4, |_, cfg| cfg.shard_entries = 1 << 18)
        .await
        .unwrap();
    let json = random_job_json(1024, 1024, 7);
    let out = submit(&net, 2, &json, Duration::from_secs(180))
        .await
        .unwrap();
    let spec = JobSpec::from_json(&json, &JobLimits::default()).unwrap();
    assert_eq!(
        out.verified.result.data(),
        spec.reference_product().unwrap().data()
    );
    assert!(
        out.verified.credits.len() >= 4,
        "{} shards",
        out.verified.credits.len()
    );
    let workers: BTreeSet<_> = out.verified.credits.iter().map(|c| c.worker).collect();
    assert!(
        workers.len() >= 3,
        "only {} distinct workers proved shards",
        workers.len()
    );
    net.shutdown().await;
}

/// Two nodes that do not prove accept a job; a prover that joins afterwards never saw the
/// announcement gossip, catches up from its peers, proves the job, and it settles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_joins_after_the_announcement_catches_up_and_proves_it() {
    let mut net = build_network(2, |_, cfg| cfg.prove = false).await.unwrap();
    let json = random_job_json(16, 24, 3);
    let addr = net.addrs[0].clone();
    let job = tokio::spawn(async move {
        starkscale_node::client::submit(json.as_bytes(), &addr, Duration::from_secs(120), |_| {})
            .await
    });
    // Wait until both nodes know the job, so the newcomer cannot have seen it announced.
    for _ in 0..200 {
        if net.nodes.iter().all(|n| n.stats.lock().unwrap().jobs == 1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(net.nodes.iter().all(|n| n.stats.lock().unwrap().jobs == 1));
    let late = net.add_node(|_, _| {}).await.unwrap();
    let out = job.await.unwrap().unwrap();
    let spec = JobSpec::from_json(&random_job_json(16, 24, 3), &JobLimits::default()).unwrap();
    assert_eq!(
        out.verified.result.data(),
        spec.reference_product().unwrap().data()
    );
    let late_key = net.nodes[late].key;
    assert!(
        out.verified.credits.iter().all(|c| c.worker == late_key),
        "the late joiner should have proved every shard"
    );
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_jobs_are_refused_with_a_clear_message() {
    let net = build_network(2, |_, _| {}).await.unwrap();
    let ragged = r#"{"matrix": [[1, 2], [3]], "vector": [1, 2]}"#;
    let err = submit(&net, 0, ragged, Duration::from_secs(10))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("row 1") || err.contains("matrix[1]"), "{err}");
    // A job whose accumulators could wrap the field: the client refuses it locally…
    let wrap = format!(
        r#"{{"matrix": [[{big}, {big}]], "vector": [{big}, {big}]}}"#,
        big = 2_000_000_000i64
    );
    let err = submit(&net, 0, &wrap, Duration::from_secs(10))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("exceeds the exact-result bound"), "{err}");
    // …and the entry peer refuses it too when it is sent raw, past the client's checks: a
    // model of large weights registered, then an X that would wrap against it.
    // Weights of 5·10^8 are exact against |X| ≤ 1 (k = 2), so the owner's setup accepts them.
    let w = starkscale_protocol::IntMatrix::new(1, 2, vec![500_000_000; 2]).unwrap();
    let owner = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    let model = starkscale_node::models::build("big", &w, 1, &owner).unwrap();
    let id = starkscale_node::client::register(
        &net.addrs[0],
        &model,
        &w,
        Duration::from_secs(10),
        |_| {},
    )
    .await
    .unwrap();
    let session = Session::connect(&net.addrs[0]).await.unwrap();
    let x = [2_000_000_000i32; 2]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let raw = Request::SubmitJob(SubmitJob {
        submission: Submission::Infer {
            model: id,
            cols: 1,
            x: Bytes(x),
        },
        deadline_ms: None,
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    match session.request(&raw, deadline).await.unwrap() {
        Response::SubmitResult(SubmitResult::Rejected { reason }) => {
            assert!(
                reason.contains("exceeds the exact-result bound"),
                "{reason}"
            )
        }
        other => panic!("entry peer accepted a wrapping job: {other:?}"),
    }
    net.shutdown().await;
}

/// Every node knows only the first node's address; kademlia discovery connects the rest,
/// so a worker can fetch chunks straight from an entry peer it was never told about.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_that_only_know_the_bootstrap_node_find_each_other() {
    let net = build_network(4, |_, cfg| {
        cfg.bootstrap.truncate(1);
        cfg.shard_entries = 1 << 10;
    })
    .await
    .unwrap();
    let json = random_job_json(64, 32, 11);
    let out = submit(&net, 3, &json, Duration::from_secs(120))
        .await
        .unwrap();
    let spec = JobSpec::from_json(&json, &JobLimits::default()).unwrap();
    assert_eq!(
        out.verified.result.data(),
        spec.reference_product().unwrap().data()
    );
    assert!(out.verified.credits.len() >= 2);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_jobs_shards_owners_and_aggregators() {
    let net = build_network(3, |_, cfg| cfg.shard_entries = 1 << 8)
        .await
        .unwrap();
    let json = random_job_json(40, 16, 9);
    let out = submit(&net, 0, &json, Duration::from_secs(120))
        .await
        .unwrap();
    let report = starkscale_node::client::node_status(&net.addrs[2], true, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(report.node, net.nodes[2].key);
    assert_eq!(report.aggregators.len(), 3);
    let job = report
        .jobs
        .iter()
        .find(|j| j.report.job == out.job)
        .expect("job listed");
    assert!(job.report.status.is_terminal(), "{}", job.report.status);
    assert_eq!(job.shards.len(), out.verified.credits.len());
    for (shard, credit) in job.shards.iter().zip(&out.verified.credits) {
        assert_eq!(shard.state, "proved");
        assert_eq!(shard.owner, Some(credit.worker));
    }
    let text = starkscale_node::client::render_status(&report);
    assert!(text.contains(&out.job.to_string()), "{text}");
    // Without --all, a settled job is not listed.
    let open = starkscale_node::client::node_status(&net.addrs[2], false, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(open.jobs.is_empty());
    net.shutdown().await;
}

/// Reads `GET /metrics` over a plain HTTP/1.1 connection.
async fn scrape(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).await.unwrap();
    body
}

fn counter(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_over_http_and_count_a_job() {
    let net = build_network(3, |_, cfg| {
        cfg.shard_entries = 1 << 8;
        cfg.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await
    .unwrap();
    let json = random_job_json(40, 16, 13);
    submit(&net, 1, &json, Duration::from_secs(120))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut made = 0.0;
    for node in &net.nodes {
        let text = scrape(node.metrics_addr.unwrap()).await;
        assert!(
            text.starts_with("HTTP/1.1 200"),
            "{}",
            &text[..text.len().min(200)]
        );
        assert!(counter(&text, "starkscale_jobs ") >= 1.0, "jobs gauge");
        assert!(
            counter(&text, "starkscale_jobs_settled ") >= 1.0,
            "settled gauge"
        );
        assert!(counter(&text, "starkscale_shard_proofs_verified_total") >= 1.0);
        assert!(counter(&text, "starkscale_gossip_verdicts_total{verdict=\"accept\"") >= 1.0);
        assert!(text.contains("starkscale_verify_seconds_count"));
        assert!(
            text.contains("gossipsub"),
            "libp2p gossipsub metrics missing"
        );
        made += counter(&text, "starkscale_shard_proofs_made_total");
    }
    assert!(made >= 3.0, "three shards proved in all, counted {made}");
    net.shutdown().await;
}
