//! A node process is killed (SIGKILL) in the middle of a job and restarted from its data
//! directory: the job still settles with the exact result, and the restarted node's database
//! holds every frame of the job exactly once.

#![allow(clippy::unwrap_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use libp2p::Multiaddr;
use starkscale_node::client;
use starkscale_node::demo::random_job_json;
use starkscale_protocol::{JobLimits, JobSpec};

const BIN: &str = env!("CARGO_BIN_EXE_starkscale");

/// Starts `starkscale node` and returns the process and its full address.
fn spawn_node(dir: &Path, bootstrap: Option<&Multiaddr>) -> (Child, Multiaddr) {
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join("node.toml");
    std::fs::write(&config, "shard_entries = 32768\nlease_secs = 5\n").unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["node", "--listen", "/ip4/127.0.0.1/tcp/0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(b) = bootstrap {
        cmd.args(["--bootstrap", &b.to_string()]);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines.next().expect("node exited before listening").unwrap();
        if let Some(a) = line.strip_prefix("listening on ") {
            break a.parse::<Multiaddr>().unwrap();
        }
    };
    // Keep draining stdout so the node never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

fn inspect(dir: &Path) -> serde_json::Value {
    let out = Command::new(BIN)
        .args(["inspect", "--json", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_job_restarts_and_the_job_settles_exactly() {
    let root = tempfile::tempdir().unwrap();
    let (mut a, addr_a) = spawn_node(&root.path().join("a"), None);
    let (mut b, addr_b) = spawn_node(&root.path().join("b"), Some(&addr_a));
    let c_dir = root.path().join("c");
    let (mut c, _) = spawn_node(&c_dir, Some(&addr_a));
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 4096 × 512 in shards of 64 rows: 64 shards, a few seconds of proving on 3 nodes.
    let json = random_job_json(4096, 512, 21);
    let spec = JobSpec::from_json(&json, &JobLimits::default()).unwrap();
    let submit_addr = addr_b.clone();
    let job = tokio::spawn(async move {
        client::submit(
            json.as_bytes(),
            &submit_addr,
            Duration::from_secs(240),
            |_| {},
        )
        .await
    });

    // Kill C once the job is under way but not finished.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (proved, total) = loop {
        assert!(Instant::now() < deadline, "the job never got under way");
        if let Ok(report) = client::node_status(&addr_b, true, Duration::from_secs(5)).await {
            if let Some(j) = report.jobs.first() {
                if j.report.shards_proved >= 4 {
                    break (j.report.shards_proved, j.report.shards_total);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    c.kill().unwrap();
    c.wait().unwrap();
    assert!(
        proved < total,
        "the job finished before the kill ({proved}/{total})"
    );

    // Restart C from its data directory: same identity, same database.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (mut c, addr_c) = spawn_node(&c_dir, Some(&addr_a));

    let out = job.await.unwrap().unwrap();
    assert_eq!(
        out.verified.result.data(),
        spec.reference_product().unwrap().data()
    );

    // C learns the settlement too (live or by catch-up).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let report = client::node_status(&addr_c, true, Duration::from_secs(5))
            .await
            .unwrap();
        if report
            .jobs
            .iter()
            .any(|j| j.report.job == out.job && j.report.status.is_terminal())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "restarted node never saw the job settle"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for child in [&mut a, &mut b, &mut c] {
        child.kill().unwrap();
        child.wait().unwrap();
    }

    // Nothing lost, nothing duplicated: one announcement, one settlement, one proof per shard.
    for dir in [root.path().join("b"), c_dir] {
        let summary = inspect(&dir);
        let jobs = summary["jobs"].as_array().unwrap();
        assert_eq!(jobs.len(), 1, "{summary}");
        let j = &jobs[0];
        assert_eq!(j["job"], out.job.to_string());
        assert_eq!(j["announcements"], 1);
        assert_eq!(j["settlements"], 1);
        let shards: Vec<u64> = j["proved_shards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_u64().unwrap())
            .collect();
        assert_eq!(
            shards,
            (0..u64::from(total)).collect::<Vec<_>>(),
            "{}",
            dir.display()
        );
        assert_eq!(j["proofs"], u64::from(total));
    }
}
