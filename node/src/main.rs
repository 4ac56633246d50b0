//! `starkscale`: run a node, submit a job, verify a settlement, or run the local demo.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use libp2p::Multiaddr;
use starkscale_node::client;
use starkscale_node::config::FileConfig;
use starkscale_node::node;
use starkscale_node::progress::JobProgress;
use starkscale_node::{demo, npy, settlement};
use starkscale_protocol::ids::NetworkId;

/// STARKScale: verifiable matrix multiplication on a peer-to-peer network of provers.
#[derive(Parser)]
#[command(name = "starkscale", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How a submitted job is followed and reported: shared by `submit` and `infer`.
#[derive(clap::Args)]
struct Follow {
    /// The peer to submit through (its full address, ending in /p2p/<peer id>). Give it
    /// more than once: the first takes the job, the others are asked about it if the first
    /// is lost after accepting it.
    #[arg(long, required = true)]
    peer: Vec<Multiaddr>,
    /// The network the job runs on: its name, or a network profile file (*.toml)
    /// [default: starkscale-local]. A settlement made on another network is refused.
    #[arg(long, env = "STARKSCALE_NETWORK")]
    network: Option<String>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
    /// Save the signed settlement artefact here.
    #[arg(long)]
    save: Option<PathBuf>,
}

impl Follow {
    fn options(&self) -> anyhow::Result<client::SubmitOptions> {
        Ok(client::SubmitOptions {
            more_peers: self.peer[1..].to_vec(),
            network: network_id(self.network.clone())?,
            ..client::SubmitOptions::new(Duration::from_secs(self.timeout))
        })
    }

    fn bar(&self, label: &str) -> Option<JobProgress> {
        (!self.json).then(|| JobProgress::new(label))
    }

    /// Closes the progress bar, saves the settlement if asked, and prints the outcome.
    fn report(&self, bar: Option<JobProgress>, out: &client::Outcome) -> anyhow::Result<()> {
        if let Some(bar) = &bar {
            bar.finish("settled and verified");
        }
        if let Some(peer) = out.followed_via {
            eprintln!("the entry peer was lost after accepting the job; it was followed through peer {peer}");
        }
        if let Some(path) = &self.save {
            std::fs::write(path, &out.settlement).map_err(|e| {
                anyhow::anyhow!("cannot save the settlement to {}: {e}", path.display())
            })?;
        }
        if self.json {
            println!("{}", result_json(&out.verified, Some(out.elapsed)));
        } else {
            println!("result: {:?}", out.verified.result.data());
            if out.limbs > 1 {
                println!(
                    "X was split into {} byte limbs to keep every product exact; the result is their verified recombination",
                    out.limbs
                );
            }
            println!(
                "verified: {} shard proof(s) against model {}, worker signatures and aggregator signature ({:.0} ms)",
                out.verified.credits.len(),
                out.model,
                out.elapsed.as_secs_f64() * 1e3
            );
        }
        Ok(())
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run a node (one process per peer).
    ///
    /// Options come from defaults, then the --config file, then STARKSCALE_* environment
    /// variables, then flags. `--print-config` shows the result as TOML.
    Node {
        /// TOML configuration file (every key: node/config.example.toml).
        #[arg(long, env = "STARKSCALE_CONFIG")]
        config: Option<PathBuf>,
        /// Address to listen on [default: /ip4/0.0.0.0/tcp/7070].
        #[arg(long, env = "STARKSCALE_LISTEN")]
        listen: Option<Multiaddr>,
        /// Peers to join through (repeatable or comma-separated), e.g. /ip4/10.0.0.1/tcp/7070/p2p/12D3KooW…
        #[arg(long, env = "STARKSCALE_BOOTSTRAP", value_delimiter = ',')]
        bootstrap: Vec<Multiaddr>,
        /// Data directory: chunks, job records, key file [default: ./starkscale-data].
        #[arg(long, env = "STARKSCALE_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// ed25519 key file (32-byte hex seed), created if missing [default: DATA_DIR/node.key].
        #[arg(long, env = "STARKSCALE_KEY_FILE")]
        key_file: Option<PathBuf>,
        /// Network name, or a network profile file (*.toml: name and bootstrap peers) to join
        /// [default: starkscale-local]. Peers on different networks ignore each other.
        #[arg(long, env = "STARKSCALE_NETWORK")]
        network: Option<String>,
        /// Shards proven at once [default: 1].
        #[arg(long, env = "STARKSCALE_CAPACITY")]
        capacity: Option<u32>,
        /// Do not prove shards (relay, serve and aggregate only).
        #[arg(long)]
        no_prove: bool,
        /// Do not take part in aggregator elections.
        #[arg(long)]
        no_aggregate: bool,
        /// Serve Prometheus metrics on this address (GET /metrics), e.g. 127.0.0.1:9100.
        #[arg(long, env = "STARKSCALE_METRICS")]
        metrics: Option<String>,
        /// Print the effective configuration as TOML and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// Submit a job through a peer, wait for it to settle and verify the result locally.
    Submit {
        /// Job file: {"matrix": [[…]], "vector": […]} or {"matrix": [[…]], "rhs": [[…]]}.
        #[arg(required_unless_present = "matrix", conflicts_with_all = ["matrix", "rhs"])]
        job: Option<PathBuf>,
        /// W as a NumPy .npy integer array (2-D, m × k), instead of a job file.
        #[arg(long, requires = "rhs")]
        matrix: Option<PathBuf>,
        /// X as a NumPy .npy integer array (1-D of length k, or 2-D k × n).
        #[arg(long, requires = "matrix")]
        rhs: Option<PathBuf>,
        #[command(flatten)]
        follow: Follow,
    },
    /// Register models (weights signed by their owner) and list the models a peer knows.
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
    /// Run X against a registered model through a peer, wait for it to settle and verify the
    /// result locally against the model id (no W, no setup).
    Infer {
        /// The model id (as printed by `model register`).
        #[arg(long)]
        model: starkscale_protocol::ModelId,
        /// X: a .npy integer array (1-D of length k, or 2-D k × n), or JSON: a list of k
        /// integers, a list of k rows, or {"vector": […]} / {"rhs": [[…]]}.
        #[arg(long)]
        rhs: PathBuf,
        #[command(flatten)]
        follow: Follow,
    },
    /// Show what a node knows: peers, aggregators, jobs, shards with their state and owner.
    Status {
        /// The node to ask (its full address, ending in /p2p/<peer id>).
        #[arg(long)]
        peer: Multiaddr,
        /// Include settled, failed and expired jobs.
        #[arg(long)]
        all: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Verify a settlement artefact offline.
    Verify {
        /// The settlement file (as saved by `submit --save` or `infer --save`).
        settlement: PathBuf,
        /// The model the settlement must be for: its id, or a model manifest file saved by
        /// `model show --save`. Without it, the settlement is checked against the model it
        /// names (say which model you trust to make the result mean something).
        #[arg(long, conflicts_with = "job")]
        model: Option<String>,
        /// X the settlement must be for (.npy or JSON, as for `infer`); without it, the
        /// settlement's own X is shown with the result.
        #[arg(long, requires = "model")]
        rhs: Option<PathBuf>,
        /// A job file: the settlement must be for its one-off model and its X (recomputes the
        /// one-off model's keys from W).
        #[arg(long)]
        job: Option<PathBuf>,
        /// The network the settlement must come from: its name, or a network profile file
        /// (*.toml) [default: starkscale-local].
        #[arg(long, env = "STARKSCALE_NETWORK")]
        network: Option<String>,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Summarise a stopped node's state database: jobs and their stored frames, chunk index.
    Inspect {
        /// The node's data directory.
        #[arg(long, default_value = "./starkscale-data")]
        data_dir: PathBuf,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a pseudo-random int8 matrix × vector job as JSON (for scripts and benchmarks).
    ExampleJob {
        /// Rows of W.
        #[arg(long, default_value_t = 1024)]
        rows: usize,
        /// Columns of W (length of the vector).
        #[arg(long, default_value_t = 1024)]
        cols: usize,
        /// Seed of the generator.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Start a local network of several nodes, submit the seed job and a larger one, and show
    /// each verified result.
    Demo {
        /// Number of nodes.
        #[arg(long, default_value_t = 4)]
        nodes: usize,
        /// Rows of the larger job's matrix.
        #[arg(long, default_value_t = 1024)]
        rows: usize,
        /// Columns of the larger job's matrix.
        #[arg(long, default_value_t = 1024)]
        cols: usize,
    },
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Commit W shard by shard on this machine (the owner's setup), sign the model with the
    /// owner key and upload W to a peer in chunks (resumable: run it again to finish an
    /// interrupted upload). Prints the model id.
    Register {
        /// W: a .npy integer array (2-D, m × k), or FILE.safetensors[:TENSOR] with an integer
        /// tensor (I8, I16, I32; floats must be quantised first).
        weights: String,
        /// Transpose W first (for tensors stored in × out).
        #[arg(long)]
        transpose: bool,
        /// A name for people.
        #[arg(long, default_value = "")]
        name: String,
        /// The peer to upload to (its full address, ending in /p2p/<peer id>).
        #[arg(long)]
        peer: Multiaddr,
        /// The owner's ed25519 key file (32-byte hex seed), created if missing
        /// [default: ~/.starkscale/owner.key].
        #[arg(long, env = "STARKSCALE_OWNER_KEY")]
        owner_key: Option<PathBuf>,
        /// Target W entries per shard.
        #[arg(long, default_value_t = starkscale_protocol::plan::DEFAULT_TARGET_ENTRIES_PER_SHARD)]
        shard_entries: u64,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the models a peer knows.
    Ls {
        /// The peer to ask.
        #[arg(long)]
        peer: Multiaddr,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one model: shape, plan, owner, shard keys.
    Show {
        /// The model id.
        model: starkscale_protocol::ModelId,
        /// The peer to ask.
        #[arg(long)]
        peer: Multiaddr,
        /// Save the signed model manifest here (for `verify --model FILE`).
        #[arg(long)]
        save: Option<PathBuf>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn owner_key(path: Option<PathBuf>) -> anyhow::Result<ed25519_dalek::SigningKey> {
    let path = match path {
        Some(p) => p,
        None => {
            let home = std::env::var_os("HOME").ok_or_else(|| {
                anyhow::anyhow!("HOME is not set: give the owner key file with --owner-key")
            })?;
            let dir = PathBuf::from(home).join(".starkscale");
            std::fs::create_dir_all(&dir).map_err(|e| {
                anyhow::anyhow!("cannot create {}: {e}; give --owner-key", dir.display())
            })?;
            dir.join("owner.key")
        }
    };
    Ok(starkscale_node::identity::Identity::load_or_create(&path)?.signing_key())
}

async fn model_command(command: ModelCommand) -> anyhow::Result<()> {
    match command {
        ModelCommand::Register {
            weights,
            transpose,
            name,
            peer,
            owner_key: key_path,
            shard_entries,
            timeout,
            json,
        } => {
            let source = starkscale_node::tensor::WeightSource::parse(&weights, transpose)?;
            let owner = owner_key(key_path)?;
            let w =
                tokio::task::spawn_blocking(move || starkscale_node::tensor::read_weights(&source))
                    .await??;
            let (m, k) = (w.rows() as u32, w.cols() as u32);
            let rows = starkscale_node::models::rows_per_shard(m, k, 1, shard_entries);
            let bar = (!json).then(|| JobProgress::new("model"));
            if let Some(bar) = &bar {
                bar.update(client::Progress::Committing {
                    shards: m.div_ceil(rows.max(1)),
                });
            }
            let started = std::time::Instant::now();
            let (w, model) = tokio::task::spawn_blocking(move || {
                let model = starkscale_node::models::build(&name, &w, rows, &owner);
                (w, model)
            })
            .await?;
            let model = model?;
            let id = client::register(&peer, &model, &w, Duration::from_secs(timeout), |p| {
                if let Some(bar) = &bar {
                    bar.update(p);
                }
            })
            .await?;
            if let Some(bar) = &bar {
                bar.finish("registered");
            }
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "model": id.to_string(),
                        "owner": model.owner().to_string(),
                        "rows": m,
                        "cols": k,
                        "shards": model.manifest.shard_keys.len(),
                        "seconds": started.elapsed().as_secs_f64(),
                    })
                );
            } else {
                println!("model {id}");
                println!(
                    "  W {m} x {k}, {} shard(s) of {rows} rows, owner {}",
                    model.manifest.shard_keys.len(),
                    model.owner()
                );
            }
            Ok(())
        }
        ModelCommand::Ls { peer, json } => {
            let models = client::list_models(&peer, Duration::from_secs(10)).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&models)?);
            } else if models.is_empty() {
                println!("no models known to this peer");
            } else {
                for m in models {
                    println!(
                        "{}  {:>6} x {:<6} {:>4} shard(s)  {}  {}",
                        m.model,
                        m.dims.0,
                        m.dims.1,
                        m.shards,
                        if m.complete { "W here" } else { "W elsewhere" },
                        m.name
                    );
                }
            }
            Ok(())
        }
        ModelCommand::Show {
            model,
            peer,
            save,
            json,
        } => {
            let (found, complete) =
                client::fetch_model(&peer, model, Duration::from_secs(10)).await?;
            if let Some(path) = save {
                let bytes = serde_json::to_vec_pretty(&found)?;
                std::fs::write(&path, bytes).map_err(|e| {
                    anyhow::anyhow!("cannot save the model to {}: {e}", path.display())
                })?;
            }
            let m = &found.manifest;
            if json {
                println!("{}", serde_json::to_string_pretty(&found)?);
            } else {
                println!("model {model}  {}", m.name);
                println!("  owner {}", m.owner);
                println!(
                    "  W {} x {}, {} chunk(s), {} shard(s) of {} rows, configuration {}",
                    m.w.rows,
                    m.w.cols,
                    m.w.chunks.len(),
                    m.shard_keys.len(),
                    m.rows_per_shard,
                    m.config_id
                );
                println!(
                    "  W all at this peer: {}",
                    if complete { "yes" } else { "no" }
                );
            }
            Ok(())
        }
    }
}

/// The model a settlement must be for, from `--model ID` or a saved model manifest file.
fn model_arg(arg: &str) -> anyhow::Result<starkscale_protocol::ModelId> {
    if let Ok(id) = arg.parse::<starkscale_protocol::ModelId>() {
        return Ok(id);
    }
    let bytes = read(&PathBuf::from(arg), "model manifest")?;
    let model: starkscale_protocol::SignedModel = serde_json::from_slice(&bytes).map_err(|e| {
        anyhow::anyhow!("{arg} is neither a model id (64 hex digits) nor a model manifest file saved by `model show --save`: {e}")
    })?;
    model
        .validate(&starkscale_protocol::JobLimits::default())
        .map_err(|e| anyhow::anyhow!("the model manifest {arg} is not valid: {e}"))?;
    Ok(model.id())
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// The id of the network named by `--network` (a name or a profile file; the default
/// network when not given).
fn network_id(network: Option<String>) -> anyhow::Result<NetworkId> {
    let mut file = FileConfig::default();
    if let Some(v) = network {
        file.network = v;
    }
    Ok(NetworkId::from_name(&file.resolve()?.network))
}

fn read(path: &PathBuf, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {what} {}: {e}", path.display()))
}

fn result_json(v: &settlement::VerifiedSettlement, elapsed: Option<Duration>) -> serde_json::Value {
    let r = &v.result;
    let rows: Vec<&[i64]> = (0..r.rows()).filter_map(|i| r.row(i)).collect();
    let result = if r.cols() == 1 {
        serde_json::json!(r.data())
    } else {
        serde_json::json!(rows)
    };
    serde_json::json!({
        "job": v.job.to_string(),
        "verified": true,
        "result": result,
        "shards": v.credits.len(),
        "workers": v.credits.iter().map(|c| c.worker.to_string()).collect::<Vec<_>>(),
        "aggregator": v.aggregator.to_string(),
        "settlement_format": v.settlement.format,
        "elapsed_ms": elapsed.map(|d| d.as_millis() as u64),
    })
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Node {
            config,
            listen,
            bootstrap,
            data_dir,
            key_file,
            network,
            capacity,
            no_prove,
            no_aggregate,
            metrics,
            print_config,
        } => {
            let mut file = match &config {
                Some(path) => FileConfig::load(path)?,
                None => FileConfig::default(),
            };
            if let Some(v) = listen {
                file.listen = v.to_string();
            }
            if !bootstrap.is_empty() {
                file.bootstrap = bootstrap.iter().map(|a| a.to_string()).collect();
            }
            if let Some(v) = data_dir {
                file.data_dir = v;
            }
            if key_file.is_some() {
                file.key_file = key_file;
            }
            if let Some(v) = network {
                file.network = v;
            }
            if let Some(v) = capacity {
                file.capacity = v;
            }
            if no_prove {
                file.prove = false;
            }
            if no_aggregate {
                file.aggregate = false;
            }
            if metrics.is_some() {
                file.metrics_listen = metrics;
            }
            if print_config {
                print!("{}", file.to_toml()?);
                return Ok(());
            }
            let cfg = file.resolve()?;
            init_tracing("info,libp2p=warn");
            let handle = node::start(cfg).await?;
            for addr in handle.addresses().await? {
                println!("listening on {addr}");
            }
            if let Some(addr) = handle.metrics_addr {
                println!("metrics on http://{addr}/metrics");
            }
            tokio::signal::ctrl_c().await?;
            println!("shutting down");
            handle.shutdown().await;
            Ok(())
        }
        Command::Submit {
            job,
            matrix,
            rhs,
            follow,
        } => {
            init_tracing("warn");
            let data = match (job, matrix, rhs) {
                (Some(job), _, _) => read(&job, "job file")?,
                (None, Some(w), Some(x)) => npy::load_job(&w, &x)?.to_json().into_bytes(),
                _ => anyhow::bail!("give a job file, or both --matrix W.npy and --rhs X.npy"),
            };
            let bar = follow.bar("job");
            let out = client::submit_with(&data, &follow.peer[0], &follow.options()?, |p| {
                if let Some(bar) = &bar {
                    bar.update(p);
                }
            })
            .await?;
            follow.report(bar, &out)
        }
        Command::Model { command } => {
            init_tracing("warn");
            model_command(command).await
        }
        Command::Infer { model, rhs, follow } => {
            init_tracing("warn");
            let x = client::read_rhs(&rhs)?;
            let bar = follow.bar("infer");
            let out = client::infer(&follow.peer[0], model, &x, &follow.options()?, |p| {
                if let Some(bar) = &bar {
                    bar.update(p);
                }
            })
            .await?;
            follow.report(bar, &out)
        }
        Command::Status { peer, all, json } => {
            init_tracing("warn");
            let report = client::node_status(&peer, all, Duration::from_secs(10)).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", client::render_status(&report));
            }
            Ok(())
        }
        Command::Verify {
            settlement: path,
            model,
            rhs,
            job,
            network,
            json,
        } => {
            init_tracing("warn");
            let bytes = read(&path, "settlement")?;
            let network = network_id(network)?;
            let verified = match (model, job) {
                (Some(model), _) => {
                    let x = rhs.as_deref().map(client::read_rhs).transpose()?;
                    client::verify_for_model(&bytes, &model_arg(&model)?, x.as_ref(), &network)?
                }
                (None, Some(job)) => {
                    let spec = client::load_job(&read(&job, "job file")?)?;
                    let verified = client::verify_on(&bytes, &network)?;
                    // The plan is read from the settlement; the keys are recomputed from this W,
                    // so a settlement for any other model fails the id check below.
                    let rows = verified.settlement.manifest.model.manifest.rows_per_shard;
                    let model = starkscale_node::models::build(
                        "one-off",
                        spec.w(),
                        rows,
                        &starkscale_node::models::one_off_owner(&spec, rows),
                    )?;
                    client::verify_for_model(&bytes, &model.id(), Some(spec.x()), &network)?
                }
                (None, None) => client::verify_on(&bytes, &network)?,
            };
            if json {
                println!("{}", result_json(&verified, None));
            } else {
                println!(
                    "settlement for job {} of model {} verifies ({})",
                    verified.job,
                    verified.settlement.manifest.model_id(),
                    verified.settlement.format
                );
                println!("result: {:?}", verified.result.data());
            }
            Ok(())
        }
        Command::Inspect { data_dir, json } => {
            let summary = starkscale_node::db::summarise(&data_dir.join("state.redb"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                println!("{} chunk(s) indexed", summary.chunks);
                for job in &summary.jobs {
                    println!(
                        "job {}: announcement {}, claims {}, proofs {} (shards {:?}), settlement {}, failure {}",
                        job.job, job.announcements, job.claims, job.proofs, job.proved_shards, job.settlements, job.failures
                    );
                }
            }
            Ok(())
        }
        Command::ExampleJob { rows, cols, seed } => {
            println!("{}", demo::random_job_json(rows, cols, seed));
            Ok(())
        }
        Command::Demo { nodes, rows, cols } => {
            init_tracing("warn");
            demo::run(nodes, rows, cols).await
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
