//! `wakehub`: the reference WakeHub binary. This file holds the command line and the
//! one-shot commands over an in-memory store (`check`, `plan`, `start`, `stop`) and `token`;
//! [`serve`] runs the server (through `wakehub_graphql::server`), [`plugins`] loads
//! connector plugins (the `plugins` feature), [`render`] draws what a person reads in a
//! terminal.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use futures::StreamExt;
use wakehub_core::engine::{Engine, EngineConfig, stack_sources};
use wakehub_core::events::{EventKind, StepStatus};
use wakehub_core::model::Topology;
use wakehub_core::model::{Action, Origin, Role, Scope};
use wakehub_core::secrets::MasterKey;
use wakehub_core::store::Store;
use wakehub_core::topology_file;

mod database;
mod energy;
mod plugins;
mod render;
mod serve;
mod stack;

#[derive(Parser)]
#[command(name = "wakehub", version, about = "Power a homelab on and off as a whole")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum CliAction {
    Start,
    Stop,
}

impl From<CliAction> for Action {
    fn from(a: CliAction) -> Action {
        match a {
            CliAction::Start => Action::Start,
            CliAction::Stop => Action::Stop,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Copy the lab of a SQLite database into an empty PostgreSQL one (all or nothing:
    /// nodes, credentials still sealed with the same master key, journal, users, tokens).
    MigrateStore {
        /// The SQLite database file.
        from: PathBuf,
        /// The PostgreSQL database (`postgres://user:password@host/db`), empty.
        to: PathBuf,
    },
    /// Validate a topology file and print its hosting tree with the dependency links.
    Check {
        /// The topology file (TOML).
        file: PathBuf,
        /// `--plugins` (with the `plugins` feature).
        #[command(flatten)]
        plugins: plugins::OneShotOptions,
    },
    /// Show what starting or stopping a node would do now (a dry run).
    Plan {
        /// The topology file (TOML).
        file: PathBuf,
        /// `start` or `stop`.
        action: CliAction,
        /// The node, by name.
        node: String,
        /// Print the plan as JSON (a stable shape for scripts).
        #[arg(long)]
        json: bool,
        /// `--plugins` (with the `plugins` feature).
        #[command(flatten)]
        plugins: plugins::OneShotOptions,
    },
    /// Start a node and everything it needs, showing each step live.
    Start {
        /// The topology file (TOML).
        file: PathBuf,
        /// The node, by name.
        node: String,
        /// Steps that may run at once (1 = strictly one at a time).
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// `--plugins` (with the `plugins` feature).
        #[command(flatten)]
        plugins: plugins::OneShotOptions,
    },
    /// Refresh a machine's state over SSH (OS, kernel, load, memory, disks, apt upgrades with
    /// security ones, reboot needed and why, services to restart, Docker) and print it.
    Refresh {
        /// The topology file (TOML).
        file: PathBuf,
        /// The machine, by name (a node with `host` and an SSH credential).
        node: String,
        /// Also probe the hardware (CPU, disks, network interfaces, GPUs).
        #[arg(long)]
        hardware: bool,
        /// Print the snapshot as JSON (the stored shape) instead.
        #[arg(long)]
        json: bool,
    },
    /// Run an action on a machine — `upgrade`, `reboot`, `docker-prune` or `command:NAME` (a
    /// `NAME_command` of its table) — showing its output live, then its report.
    Action {
        /// The topology file (TOML).
        file: PathBuf,
        /// The machine, by name.
        node: String,
        /// The action.
        action: String,
    },
    /// Maintain machines: wake what is asleep, refresh, upgrade (guests before their hosts),
    /// reboot only what requires it, verify, and put each back to the power it had — showing
    /// every step live, then the report. With `--plan`, only say what it would do.
    Maintenance {
        /// The topology file (TOML).
        file: PathBuf,
        /// Machines by name (comma-separated).
        #[arg(long, value_delimiter = ',')]
        nodes: Vec<String>,
        /// Machines by tag (comma-separated).
        #[arg(long, value_delimiter = ',')]
        tags: Vec<String>,
        /// Print the plan and change nothing.
        #[arg(long)]
        plan: bool,
    },
    /// Run the WakeHub server: the GraphQL API over a SQLite store.
    Serve(Box<serve::Options>),
    /// Stacks of containers (compose files): apply one, showing each step live.
    Stack {
        #[command(subcommand)]
        command: stack::StackCommand,
    },
    /// A month's energy report: per node and tag, drawn against always on, and the saving.
    Energy {
        /// The database (default: `$XDG_DATA_HOME/wakehub/wakehub.db`).
        #[arg(long)]
        db: Option<PathBuf>,
        /// The month, `YYYY-MM` (UTC; default: this month, up to now).
        #[arg(long)]
        month: Option<String>,
        /// The price of a kWh (default: the one set on the server, if any).
        #[arg(long)]
        price: Option<f64>,
        /// Its currency.
        #[arg(long, default_value = "EUR")]
        currency: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Manage the people who log in (`POST /login`): add, list, remove.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Connector plugins: describe a `.wasm` file, validate a configuration, call it on a
    /// device.
    #[cfg(feature = "plugins")]
    Plugin {
        #[command(subcommand)]
        command: plugins::PluginCommand,
    },
    /// Stop a node and everything that cannot run without it, showing each step live.
    Stop {
        /// The topology file (TOML).
        file: PathBuf,
        /// The node, by name.
        node: String,
        /// Steps that may run at once (1 = strictly one at a time).
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// `--plugins` (with the `plugins` feature).
        #[command(flatten)]
        plugins: plugins::OneShotOptions,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token; prints it alone on stdout, once (only its hash is stored).
    Create {
        /// A name to recognise it by (journaled with what it does).
        name: String,
        /// What it may do: `viewer` (read), `operator` (also power things), `admin` (also
        /// change the lab).
        #[arg(long)]
        role: Role,
        /// The nodes it may see and act on: `*` (all, the default), or a comma-separated
        /// list of `tag:TAG` and node names.
        #[arg(long, default_value = "*")]
        nodes: Scope,
        /// How long it is valid (`30d`, `12h`); forever when left out.
        #[arg(long, value_parser = humantime::parse_duration)]
        expires: Option<std::time::Duration>,
        /// The database.
        #[arg(long)]
        db: Option<PathBuf>,
    },
    /// List tokens (never their values).
    List {
        /// The database.
        #[arg(long)]
        db: Option<PathBuf>,
    },
    /// Revoke a token by name or id.
    Revoke {
        /// Its name or id.
        name: String,
        /// The database.
        #[arg(long)]
        db: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(options) => runtime().and_then(|rt| rt.block_on(serve::run(*options))),
        Command::Token { command } => token(command),
        Command::Energy { db, month, price, currency, json } => {
            energy::report(db, month, price, &currency, json).map(|()| ExitCode::SUCCESS)
        }
        Command::Stack { command } => runtime().and_then(|rt| rt.block_on(stack::command(command))),
        Command::User { command } => user(command),
        #[cfg(feature = "plugins")]
        Command::Plugin { command } => runtime().and_then(|rt| rt.block_on(plugins::command(command))),
        Command::Check { file, plugins } => check(&file, &plugins),
        Command::MigrateStore { from, to } => database::migrate_store(&from, &to),
        Command::Plan { file, action, node, json, plugins } => {
            runtime().and_then(|rt| rt.block_on(plan(&file, action.into(), &node, json, &plugins)))
        }
        Command::Start { file, node, concurrency, plugins } => {
            runtime().and_then(|rt| rt.block_on(cascade(&file, Action::Start, &node, concurrency, &plugins)))
        }
        Command::Action { file, node, action } => {
            runtime().and_then(|rt| rt.block_on(action_run(&file, &node, &action)))
        }
        Command::Maintenance { file, nodes, tags, plan } => {
            runtime().and_then(|rt| rt.block_on(maintenance(&file, nodes, tags, plan)))
        }
        Command::Refresh { file, node, hardware, json } => {
            runtime().and_then(|rt| rt.block_on(refresh(&file, &node, hardware, json)))
        }
        Command::Stop { file, node, concurrency, plugins } => {
            runtime().and_then(|rt| rt.block_on(cascade(&file, Action::Stop, &node, concurrency, &plugins)))
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; the password is read from the first line of stdin (10 characters or more).
    Add {
        /// The name it logs in with.
        name: String,
        /// What it may do: `viewer`, `operator` or `admin`.
        #[arg(long)]
        role: Role,
        /// The nodes it may see and act on: `*` (all, the default), or `tag:TAG` and names.
        #[arg(long, default_value = "*")]
        nodes: Scope,
        /// The database.
        #[arg(long)]
        db: Option<PathBuf>,
    },
    /// List users (never their passwords).
    List {
        /// The database.
        #[arg(long)]
        db: Option<PathBuf>,
    },
    /// Remove a user and end its sessions.
    Remove {
        /// Its name.
        name: String,
        /// The database.
        #[arg(long)]
        db: Option<PathBuf>,
    },
}

fn user(command: UserCommand) -> anyhow::Result<ExitCode> {
    match command {
        UserCommand::Add { name, role, nodes, db } => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            let store = database::open_store(&database::db_path(db)?)?;
            let u = store.create_user(&name, password, role, &nodes)?;
            println!("{}\t{}\t{}", u.name, u.role, u.scope);
        }
        UserCommand::List { db } => {
            let store = database::open_store(&database::db_path(db)?)?;
            for u in store.users()? {
                println!("{}\t{}\t{}", u.name, u.role, u.scope);
            }
        }
        UserCommand::Remove { name, db } => {
            let store = database::open_store(&database::db_path(db)?)?;
            store.remove_user(&name)?;
            println!("removed {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn token(command: TokenCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Create { name, role, nodes, expires, db } => {
            let store = database::open_store(&database::db_path(db)?)?;
            let expires_at = expires.map(|d| {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                (now + d).as_millis() as i64
            });
            let (_, token) = store.create_token(&name, role, &nodes, expires_at)?;
            println!("{}", token.expose());
        }
        TokenCommand::List { db } => {
            let store = database::open_store(&database::db_path(db)?)?;
            for t in store.tokens()? {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                let state = match (t.revoked_at_ms, t.expires_at_ms) {
                    (Some(_), _) => "revoked",
                    (None, Some(at)) if at <= now => "expired",
                    (None, _) => "active",
                };
                println!("{}\t{}\t{}\t{}\t{}", t.id, t.name, state, t.role, t.scope);
            }
        }
        TokenCommand::Revoke { name, db } => {
            let store = database::open_store(&database::db_path(db)?)?;
            let t = store.revoke_token(&name)?;
            eprintln!("revoked token {} ({})", t.id, t.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

/// Reads and validates a topology file, with the node kinds and connectors of the loaded
/// plugins; `Err` holds the message (exit code 1).
fn load_with(file: &Path, plugins: &plugins::Loaded) -> anyhow::Result<Result<Topology, String>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let (_, options) = plugins.registry();
    // The parser runs the connectors' checks too: structure and keys, every problem at once.
    match topology_file::parse(&text, &options) {
        Ok(t) => Ok(Ok(t)),
        Err(e) => Ok(Err(format!("{}: {e}", file.display()))),
    }
}

/// The engine of a one-shot command over `file`, or `None` when the file is refused (its
/// problems are printed: the command exits 1).
fn one_shot_engine(file: &Path, concurrency: usize, plugins: &plugins::Loaded) -> anyhow::Result<Option<Engine>> {
    let loaded = load_with(file, plugins)?.and_then(|t| {
        let stacks = stack_sources(&t, &base_dir(file)).map_err(|e| format!("{}: {e}", file.display()))?;
        Ok((t, stacks))
    });
    match loaded {
        Ok((topology, stacks)) => {
            let engine = engine_for(&topology, concurrency, plugins)?;
            save_stack_sources(engine.store(), stacks)?;
            Ok(Some(engine))
        }
        Err(message) => {
            eprintln!("error: {message}");
            Ok(None)
        }
    }
}

/// The directory a topology file's relative paths (`compose_file`) are read from.
pub(crate) fn base_dir(file: &Path) -> PathBuf {
    file.parent().filter(|p| !p.as_os_str().is_empty()).map_or_else(|| PathBuf::from("."), Path::to_owned)
}

/// Writes the compose files a topology file gives its stacks as their versions (nothing new
/// when one means the same as the stack's latest).
pub(crate) fn save_stack_sources(
    store: &Store,
    stacks: Vec<(String, wakehub_core::stack::Compose)>,
) -> anyhow::Result<()> {
    let topology = store.topology()?;
    for (name, compose) in stacks {
        let Some(node) = topology.by_name(&name) else { continue };
        let (v, created) = store.save_stack_version(node.id, &compose, "operator", Some("from the topology file"))?;
        if created {
            tracing::info!(stack = %name, version = v.number, "stack version written from the topology file");
        }
    }
    Ok(())
}

fn check(file: &Path, plugins: &plugins::OneShotOptions) -> anyhow::Result<ExitCode> {
    let loaded = load_with(file, &plugins.load()?)?.and_then(|t| {
        stack_sources(&t, &base_dir(file)).map_err(|e| format!("{}: {e}", file.display()))?;
        Ok(t)
    });
    match loaded {
        Ok(topology) => {
            let links = topology.links().count();
            println!("{}: {} nodes, {} dependency links — valid\n", file.display(), topology.len(), links);
            print!("{}", render::tree(&topology));
            Ok(ExitCode::SUCCESS)
        }
        Err(message) => {
            eprintln!("error: {message}");
            Ok(ExitCode::from(1))
        }
    }
}

/// An engine over a private in-memory store holding the file's topology, with the built-in
/// connectors and the loaded plugins.
fn engine_for(topology: &Topology, concurrency: usize, plugins: &plugins::Loaded) -> anyhow::Result<Engine> {
    let store = Store::open_in_memory(MasterKey::generate())?;
    store.import(topology, Origin::Operator)?;
    let (registry, options) = plugins.registry();
    let config = EngineConfig { concurrency, plugin_kinds: options.plugin_kinds, ..EngineConfig::default() };
    Ok(Engine::new(store, registry, config)?)
}

/// `wakehub refresh FILE NODE`: exit 0 when the machine answered or is asleep, 1 when the
/// refresh failed (its code and message on stderr), 2 on a bad request.
async fn refresh(file: &Path, node: &str, hardware: bool, json: bool) -> anyhow::Result<ExitCode> {
    let plugins = plugins::Loaded::default();
    let Some(engine) = one_shot_engine(file, 4, &plugins)? else { return Ok(ExitCode::from(1)) };
    let options = wakehub_core::engine::RefreshOptions::default().with_hardware(hardware);
    let r = engine.refresh_machine(node, options, "cli").await?;
    let snapshot = match r.snapshot {
        Some(_) => engine.store().latest_snapshot(r.refresh.node)?.map(|s| s.snapshot),
        None => None,
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "outcome": r.refresh.outcome.as_str(),
                "error_code": r.refresh.error_code,
                "error_message": r.refresh.error_message,
                "snapshot": snapshot,
            }))?
        );
    } else {
        print!("{}", render::machine(node, &r.state, snapshot.as_ref()));
    }
    Ok(if r.refresh.outcome == wakehub_core::store::RefreshOutcome::Failed {
        if !json {
            eprintln!(
                "error: {} ({})",
                r.refresh.error_message.as_deref().unwrap_or("refresh failed"),
                r.refresh.error_code.as_deref().unwrap_or("PLATFORM_ERROR")
            );
        }
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `wakehub maintenance FILE`: exit 0 when the run succeeded (or the plan was printed), 1
/// when it needs attention, 2 on a bad request (its code on stderr).
async fn maintenance(file: &Path, nodes: Vec<String>, tags: Vec<String>, plan_only: bool) -> anyhow::Result<ExitCode> {
    use wakehub_core::engine::Selection;
    use wakehub_core::store::RunStatus;
    let plugins = plugins::Loaded::default();
    let Some(engine) = one_shot_engine(file, 4, &plugins)? else { return Ok(ExitCode::from(1)) };
    let selection = Selection { nodes, tags };
    let refused = |e: wakehub_core::engine::EngineError| {
        eprintln!("error: {e} ({})", e.code().as_str());
        ExitCode::from(2)
    };
    let plan = match engine.plan_maintenance(&selection).await {
        Ok(p) => p,
        Err(e) => return Ok(refused(e)),
    };
    print!("{}", render::maintenance_plan(&plan));
    if plan_only {
        return Ok(ExitCode::SUCCESS);
    }
    let run = match engine.run_maintenance(selection, None, "manual", "cli").await {
        Ok(r) => r,
        Err(e) => return Ok(refused(e)),
    };
    println!();
    let mut shown = 0;
    let done = loop {
        let record = engine.store().maintenance_run(run.id)?.ok_or_else(|| anyhow::anyhow!("run vanished"))?;
        let steps = engine.store().maintenance_steps(run.id)?;
        for s in steps.iter().skip(shown) {
            println!("{} {}: {}: {}", s.phase, s.node.as_deref().unwrap_or("-"), s.status, s.message);
        }
        shown = steps.len();
        if record.status != RunStatus::Running {
            break record;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!();
    print!("{}", done.report.as_deref().unwrap_or_default());
    Ok(if done.status == RunStatus::Succeeded { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `wakehub action FILE NODE ACTION`: exit 0 when it succeeded, 1 when it failed (its error
/// kind on stderr), 2 on a bad request.
async fn action_run(file: &Path, node: &str, action: &str) -> anyhow::Result<ExitCode> {
    use wakehub_core::engine::LogLine;
    let plugins = plugins::Loaded::default();
    let Some(engine) = one_shot_engine(file, 4, &plugins)? else { return Ok(ExitCode::from(1)) };
    let queued = engine.run_action(node, action, "manual", "cli").await?;
    // Follow its log live from the moment it is queued.
    let mut rx = match engine.execution_log(&queued).await? {
        Some((so_far, rx)) => {
            so_far.iter().for_each(|l| println!("{l}"));
            Some(rx)
        }
        None => None,
    };
    if let Some(rx) = rx.as_mut() {
        loop {
            match rx.recv().await {
                Ok(LogLine::Line(l)) => println!("{l}"),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => println!("@@ {n} lines skipped"),
            }
        }
    }
    let done = loop {
        let e = engine.store().execution(queued.id)?.ok_or_else(|| anyhow::anyhow!("execution vanished"))?;
        if e.status.is_final() {
            break e;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!();
    print!("{}", done.report.as_deref().unwrap_or_default());
    Ok(if done.status == wakehub_core::store::ExecutionStatus::Succeeded {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "error: {} {} ({})",
            done.action,
            done.status.as_str(),
            done.error_kind.as_deref().unwrap_or("unknown")
        );
        ExitCode::from(1)
    })
}

async fn plan(
    file: &Path,
    action: Action,
    node: &str,
    json: bool,
    plugins: &plugins::OneShotOptions,
) -> anyhow::Result<ExitCode> {
    let plugins = plugins.load()?;
    let Some(engine) = one_shot_engine(file, 4, &plugins)? else { return Ok(ExitCode::from(1)) };
    let stored = engine.store().topology()?;
    let Some(target) = stored.by_name(node) else { bail!("unknown node `{node}` in {}", file.display()) };
    let plan = engine.plan(target.id, action).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&render::plan_json(&stored, &plan))?);
    } else {
        print!("{}", render::plan(&stored, &plan));
    }
    Ok(ExitCode::SUCCESS)
}

async fn cascade(
    file: &Path,
    action: Action,
    node: &str,
    concurrency: usize,
    plugins: &plugins::OneShotOptions,
) -> anyhow::Result<ExitCode> {
    let plugins = plugins.load()?;
    let Some(engine) = one_shot_engine(file, concurrency, &plugins)? else { return Ok(ExitCode::from(1)) };
    let stored = engine.store().topology()?;
    let Some(target) = stored.by_name(node) else { bail!("unknown node `{node}` in {}", file.display()) };
    let plan = engine.plan(target.id, action).await?;
    print!("{}", render::plan(&stored, &plan));
    let after = engine.store().last_event_id()?;
    let mut events = engine.subscribe(after);
    let began = Instant::now();
    let record = engine.request(target.id, action).await?;
    let width = stored.nodes().map(|n| n.name().len()).max().unwrap_or(8);
    let mut step_began = std::collections::HashMap::new();
    while let Some(event) = events.next().await {
        let event = event?;
        let at = render::short(began.elapsed());
        match event.kind {
            EventKind::CascadeProgress { cascade, current, step, total_steps, .. } if cascade == record.id => {
                let detail = match current.step_status {
                    StepStatus::Running => {
                        step_began.insert(current.node, Instant::now());
                        format!("{}…", current.state)
                    }
                    StepStatus::Failed => "failed ✗".to_owned(),
                    status => {
                        let took =
                            step_began.get(&current.node).map(|t| render::short(t.elapsed())).unwrap_or_default();
                        let word = match status {
                            StepStatus::Skipped => "skipped",
                            StepStatus::Joined => "joined",
                            _ => "done",
                        };
                        format!("{} ✓ {word} in {took}  [{step}/{total_steps}]", current.state)
                    }
                };
                println!("  [{at:>6}] {:width$}  {detail}", current.name);
            }
            EventKind::NodeKept { cascade, name, reason, .. } if cascade == record.id => {
                println!("  [{at:>6}] {name:width$}  kept on: {reason}");
            }
            EventKind::ShutdownProposed { cascade, name, reason, proposal, .. } if cascade == record.id => {
                println!("  [{at:>6}] {name:width$}  shutdown proposed ({proposal}): {reason}");
            }
            EventKind::CascadeComplete { cascade, .. } if cascade == record.id => {
                println!("✔ {action} {node} completed in {}", render::short(began.elapsed()));
                return Ok(ExitCode::SUCCESS);
            }
            EventKind::CascadeError { cascade, code, message, status, .. } if cascade == record.id => {
                println!(
                    "✘ {action} {node} {} after {}: {code}: {message}",
                    status.as_str(),
                    render::short(began.elapsed())
                );
                return Ok(ExitCode::from(1));
            }
            _ => {}
        }
    }
    bail!("the event stream ended before the cascade did")
}
