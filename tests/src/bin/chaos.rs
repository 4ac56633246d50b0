//! Runs randomized chaos scenarios and prints what each showed, then a summary.
//!
//!     cargo run --release -p starkscale-tests --bin chaos -- [--scenarios N] [--seed S]
//!
//! Exits non-zero if any scenario broke an invariant (a bad proof or wrong result accepted, a
//! job neither settled exactly nor failed with a clear status).

use std::time::{Duration, Instant};

use starkscale_tests::chaos::{run_scenario, JobEnd, ScenarioParams, ScenarioReport};

fn parse_args() -> Result<(u64, u64), String> {
    let mut scenarios = 100;
    let mut seed = 1;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a whole number, e.g. {name} 10"))
        };
        match arg.as_str() {
            "--scenarios" => scenarios = value("--scenarios")?,
            "--seed" => seed = value("--seed")?,
            "-h" | "--help" => {
                println!("usage: chaos [--scenarios N (default 100)] [--seed FIRST (default 1)]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}; try --help")),
        }
    }
    Ok((scenarios, seed))
}

#[tokio::main]
async fn main() {
    // Node logs only when asked for (RUST_LOG=info, …).
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let (scenarios, first) = match parse_args() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("chaos: {e}");
            std::process::exit(2);
        }
    };
    let params = ScenarioParams::default();
    println!(
        "{scenarios} scenarios from seed {first}: {}-{} workers, {:.0}% crashing, {:.0}% cheating, {} jobs each",
        params.workers.0,
        params.workers.1,
        params.crash_share * 100.0,
        params.cheat_share * 100.0,
        params.jobs
    );
    let started = Instant::now();
    let mut reports: Vec<ScenarioReport> = Vec::new();
    let mut errors = 0;
    for seed in first..first + scenarios {
        match run_scenario(seed, params).await {
            Ok(report) => {
                println!("{}", report.line());
                reports.push(report);
            }
            Err(e) => {
                errors += 1;
                println!("seed {seed:>4}: harness error: {e:#}");
            }
        }
    }
    summarise(&reports, errors, started.elapsed());
    if errors > 0 || reports.iter().any(|r| !r.ok()) {
        std::process::exit(1);
    }
}

fn summarise(reports: &[ScenarioReport], errors: usize, wall: Duration) {
    let jobs: Vec<&(JobEnd, Duration)> = reports.iter().flat_map(|r| &r.jobs).collect();
    let exact = jobs.iter().filter(|(e, _)| *e == JobEnd::Exact).count();
    let failed = jobs
        .iter()
        .filter(|(e, _)| matches!(e, JobEnd::Failed(_)))
        .count();
    let withheld: Vec<&JobEnd> = reports.iter().flat_map(|r| &r.withheld).collect();
    let withheld_failed = withheld
        .iter()
        .filter(|e| matches!(e, JobEnd::Failed(_)))
        .count();
    let mut times: Vec<f64> = jobs
        .iter()
        .filter(|(e, _)| *e == JobEnd::Exact)
        .map(|(_, t)| t.as_secs_f64())
        .collect();
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        times
            .get(((times.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let sum = |f: fn(&ScenarioReport) -> usize| reports.iter().map(f).sum::<usize>();
    println!(
        "\n== summary: {} scenarios ({errors} harness errors) in {:.0} s",
        reports.len(),
        wall.as_secs_f64()
    );
    println!("workers {}, crashed {} (restarted {}), elected aggregator crashed in {} scenarios, cheaters {}",
        sum(|r| r.workers), sum(|r| r.crashed), sum(|r| r.restarted),
        reports.iter().filter(|r| r.aggregator_crashed).count(), sum(|r| r.cheaters.len()));
    println!("submitted jobs: {} settled with the exact result, {failed} failed with a clear status, {} other", exact, jobs.len() - exact - failed);
    println!(
        "jobs with withheld data: {withheld_failed}/{} ended failed with a clear status",
        withheld.len()
    );
    println!(
        "bad proofs accepted: {}; wrong results accepted: {}",
        sum(|r| r.bad_proofs_accepted),
        sum(|r| r.wrong_results_accepted)
    );
    println!("cheaters penalised: {} of {} (always-rejectable kinds: {}), banned: {}; invalid proofs refused: {}",
        sum(|r| r.penalised), sum(|r| r.cheaters.len()), sum(|r| r.penalisable), sum(|r| r.banned),
        reports.iter().map(|r| r.proofs_refused).sum::<u64>());
    println!(
        "time to settle (exact jobs): median {:.1} s, p90 {:.1} s, max {:.1} s",
        pct(0.5),
        pct(0.9),
        pct(1.0)
    );
}
