//! `wakehub serve`: the store (and `token`'s access to it), the plugins, the engine, the
//! monitor and periodic discovery, the HTTP server, graceful shutdown.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use wakehub_core::engine::{Engine, EngineConfig};
use wakehub_core::model::{ErrorCode, Origin, Role, Scope};
use wakehub_core::topology_file;
use wakehub_graphql::server::{self, ServerConfig};

use crate::plugins;

/// The demo homelab, built in so `serve --demo` works from any directory.
const DEMO: &str = include_str!("../../../../examples/homelab.toml");

/// `wakehub serve`'s options.
#[derive(clap::Args)]
pub(crate) struct Options {
    /// A topology file to import at start-up (all or nothing).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The database (default: `$XDG_DATA_HOME/wakehub/wakehub.db`), a SQLite file or a
    /// PostgreSQL URL (`postgres://user:password@host/db`; add `?sslmode=require` for TLS,
    /// verified against the system's authorities or `&sslrootcert=CA.pem`). The master key is read from
    /// `WAKEHUB_MASTER_KEY` or `master.key` beside the file (`$XDG_DATA_HOME/wakehub/` for
    /// PostgreSQL).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// On PostgreSQL, how long the leading instance's lease lasts: renewed every third of it;
    /// other instances on the same database follow (serve the API, forward mutations to the
    /// leader) and one takes over when a lease runs out (its holder killed or cut off).
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub lease: Duration,
    /// On PostgreSQL, where the other instances reach this one's API when it leads (they
    /// forward mutations there), e.g. `http://10.0.0.5:8080`; by default the `--listen`
    /// address (127.0.0.1 for an unspecified one).
    #[arg(long)]
    pub advertise: Option<String>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Address of the wake-on-request proxy (the nodes' `[node.proxy]` routes and the
    /// forward-auth endpoint `/.wakehub/auth`); no proxy without it.
    #[arg(long)]
    pub proxy_listen: Option<String>,
    /// The proxy serves HTTPS with this PEM certificate chain (with `--proxy-tls-key`).
    #[arg(long, requires = "proxy_tls_key")]
    pub proxy_tls_cert: Option<PathBuf>,
    /// The certificate's PEM private key.
    #[arg(long, requires = "proxy_tls_cert")]
    pub proxy_tls_key: Option<PathBuf>,
    /// Start on a fresh temporary database with the demo homelab (simulated connectors)
    /// and print a demo token.
    #[arg(long)]
    pub demo: bool,
    /// Steps of one cascade that may run at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// On SIGTERM, how long steps in flight may finish before what is left is marked
    /// interrupted.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
    /// How often an open WebSocket's token is checked again (a revoked token's sockets
    /// are closed at the next check).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub token_recheck: Duration,
    /// How long a WebSocket may take to authenticate before it is closed (4408).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub ws_auth_deadline: Duration,
    /// WebSockets (pending or open) one client address may hold.
    #[arg(long, default_value_t = 64)]
    pub ws_per_address: usize,
    /// Authenticated WebSockets the server holds at once (each takes a file descriptor:
    /// keep it under the process's limit, `ulimit -n`).
    #[arg(long, default_value_t = 4096)]
    pub ws_connections: usize,
    /// How long journal events are kept (`0s`: for ever); older ones are pruned by the
    /// monitor, and a client resuming from before that gets `JOURNAL_PRUNED`.
    #[arg(long, default_value = "90days", value_parser = humantime::parse_duration)]
    pub journal_retention: Duration,
    /// Subscriptions one WebSocket may hold open.
    #[arg(long, default_value_t = 100)]
    pub ws_max_subscriptions: usize,
    /// `--plugins`, `--plugin-cache`, `--plugin-call-timeout` (with the `plugins` feature).
    #[command(flatten)]
    pub plugins: plugins::ServeOptions,
    /// How often hosts that offer a platform are discovered again (`0s`: only on
    /// request, through the `discover` mutation).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub discover_every: Duration,
    /// Home Assistant over MQTT: the broker, `HOST:PORT` (the user in `--mqtt-user`, its
    /// password in `WAKEHUB_MQTT_PASSWORD`). Pinned nodes (and `--mqtt-tags`) appear as
    /// switches; needs `--mqtt-as`.
    #[arg(long)]
    pub mqtt: Option<String>,
    /// The API token whose role and scope Home Assistant's commands have (its name).
    #[arg(long)]
    pub mqtt_as: Option<String>,
    /// The broker's user.
    #[arg(long)]
    pub mqtt_user: Option<String>,
    /// Nodes carrying one of these tags (comma-separated) appear too, beside the pinned ones.
    #[arg(long, value_delimiter = ',')]
    pub mqtt_tags: Vec<String>,
    /// Home Assistant's discovery prefix.
    #[arg(long, default_value = "homeassistant")]
    pub mqtt_prefix: String,
    /// The broker over TLS, its certificate checked against the system's authorities.
    #[arg(long)]
    pub mqtt_tls: bool,
    /// The broker over TLS, accepting exactly the certificate with this SHA-256 (`AB:CD:…`,
    /// `openssl x509 -noout -fingerprint -sha256`): a self-signed broker.
    #[arg(long, conflicts_with = "mqtt_tls")]
    pub mqtt_tls_fingerprint: Option<String>,
    /// How often every node is observed, the power schedules and maintenance windows
    /// checked, and the inactivity rules applied (at least 1s).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub monitor_every: Duration,
}

/// A topology given at start-up, imported by the instance that leads.
type Import = (wakehub_core::model::Topology, Vec<(String, wakehub_core::stack::Compose)>);

/// Runs the server until SIGTERM (or Ctrl-C), then lets cascades in flight finish.
///
/// On a PostgreSQL database several instances may run: the one holding the lease leads (runs
/// the engine's work), the others serve the API as followers and take over when the lease
/// runs out (see `wakehub_core::engine::Engine::follower`).
pub(crate) async fn run(options: Options) -> anyhow::Result<ExitCode> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let options = std::sync::Arc::new(options);

    let demo_dir =
        if options.demo { Some(tempfile::tempdir().context("cannot create a demo directory")?) } else { None };
    let db = match &demo_dir {
        Some(dir) => dir.path().join("wakehub.db"),
        None => crate::database::db_path(options.db.clone())?,
    };
    let store = crate::database::open_store(&db)?;
    let listener = match tokio::net::TcpListener::bind(&options.listen).await {
        Ok(l) => l,
        Err(e) => bail!("cannot listen on {}: {e}", options.listen),
    };
    let addr = listener.local_addr()?;
    let proxy_listener = match &options.proxy_listen {
        None => None,
        Some(at) => match tokio::net::TcpListener::bind(at).await {
            Ok(l) => Some(l),
            Err(e) => bail!("cannot listen on {at} (--proxy-listen): {e}"),
        },
    };
    let url = match &options.advertise {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None if addr.ip().is_unspecified() => format!("http://127.0.0.1:{}", addr.port()),
        None => format!("http://{addr}"),
    };
    let claimant = crate::database::Claimant::new(&db, &store, options.lease, url);
    let held = claimant.try_claim().await?;
    let plugins = options.plugins.load(&crate::database::home_of(&db)?.join("wakehub.db"), &store)?;
    let (registry, parse_options) = plugins.registry();
    let topology_text = match (&options.config, options.demo) {
        (Some(file), _) => {
            Some(std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?)
        }
        (None, true) => Some(DEMO.to_owned()),
        (None, false) => None,
    };
    // Checked now by every instance, imported by the one that leads.
    let mut import: Option<Import> = None;
    if let Some(text) = topology_text {
        let topology = match topology_file::parse(&text, &parse_options) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(1));
            }
        };
        let stacks = match &options.config {
            Some(file) => match wakehub_core::engine::stack_sources(&topology, &crate::base_dir(file)) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {}: {e}", file.display());
                    return Ok(ExitCode::from(1));
                }
            },
            None => Vec::new(),
        };
        import = Some((topology, stacks));
    }
    let config = EngineConfig {
        concurrency: options.concurrency,
        shutdown_grace: options.shutdown_grace,
        plugin_kinds: parse_options.plugin_kinds.clone(),
        ..EngineConfig::default()
    };
    let engine = if held.is_some() {
        if let Some(i) = import.take() {
            self::import(&store, i)?;
        }
        Engine::new(store, registry, config)?
    } else {
        Engine::follower(store, registry, config)?
    };
    // Nodes no connector serves (plugins left out of the command line) would only show
    // `UNKNOWN`: say so now.
    for (node, type_name) in engine.unserved_nodes(&engine.store().topology()?) {
        let hint = match type_name.strip_prefix("plugin:") {
            Some(plugin) => format!("the plugin `{plugin}` is not loaded: give `--plugins DIR`, DIR holding its .wasm"),
            None => format!("no connector of type `{type_name}` exists in this build"),
        };
        tracing::warn!(node = %node, connector = %type_name, "{hint}");
        eprintln!("warning: node `{node}` cannot be observed or powered: {hint}");
    }
    let app = server::router(
        engine.clone(),
        ServerConfig {
            token_recheck: options.token_recheck,
            ws_auth_deadline: options.ws_auth_deadline,
            ws_max_per_address: options.ws_per_address,
            ws_max_connections: options.ws_connections,
            ws_max_subscriptions: options.ws_max_subscriptions,
            #[cfg(feature = "plugins")]
            plugins: plugins.host(),
            ..ServerConfig::default()
        },
    );
    // What a person needs to connect, written at once. Whoever reads it may close the pipe
    // afterwards: that is no reason to stop serving.
    let mut out = format!("WakeHub listening on http://{addr}/graphql (database {})\n", crate::database::shown(&db));
    out += &format!("dashboard: http://{addr}/\n");
    if options.demo {
        let (_, token) = engine.store().create_token("demo", Role::Admin, &Scope::All, None)?;
        out += &format!("demo token: {}\n", token.expose());
        // A person's login too (`POST /login`), with a fresh random password.
        let password = wakehub_core::secrets::random_string(12);
        engine.store().create_user("demo", &password, Role::Admin, &Scope::All)?;
        out += &format!("demo login: demo / {password}\n");
        // And someone who may only look, to see what a viewer is (not) offered.
        let password = wakehub_core::secrets::random_string(12);
        engine.store().create_user("viewer", &password, Role::Viewer, &Scope::All)?;
        out += &format!("demo viewer: viewer / {password}\n");
    }
    if let Some(l) = &proxy_listener {
        let scheme = if options.proxy_tls_cert.is_some() { "https" } else { "http" };
        out += &format!("proxy: {scheme}://{}/\n", l.local_addr()?);
    }
    let stopping = tokio_util::sync::CancellationToken::new();
    // The leader's part: before serving when this instance leads at once (so what a
    // previous run left is settled before anyone asks), else once it takes the lease over.
    let leading = match held {
        Some(held) => {
            let parts = lead(engine.clone(), held, import, proxy_listener, &options, stopping.clone()).await?;
            tokio::spawn(async move { parts })
        }
        None => {
            out += "following: another instance leads this database (this one serves the API, forwards mutations, and takes over if the leader stops)\n";
            let (engine, options, stopping) = (engine.clone(), options.clone(), stopping.clone());
            tokio::spawn(async move {
                let held = match claimant.wait().await {
                    Ok(h) => h,
                    Err(e) => fail(&format!("cannot take the lease: {e}")),
                };
                match lead(engine, held, import, proxy_listener, &options, stopping).await {
                    Ok(l) => l,
                    Err(e) => fail(&format!("cannot lead: {e:#}")),
                }
            })
        }
    };
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush()) {
        tracing::warn!("cannot write the start-up lines to stdout: {e}");
    }
    drop(stdout);
    // Events are small frames: without TCP_NODELAY, Nagle's algorithm holds them ~40 ms.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!("cannot set TCP_NODELAY: {e}");
        }
    });
    axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    stopping.cancel();
    if !leading.is_finished() {
        // Still following (or taking over): there is nothing of the leader's to stop.
        leading.abort();
    }
    let held = match leading.await {
        Ok(parts) => Some(parts.stop().await),
        Err(_) => None,
    };
    tracing::info!("shutting down: letting cascades in flight finish");
    engine.shutdown().await;
    // The lease (or the file's lock) is given up last: no other instance may lead while
    // this one's cascades finish.
    drop(held);
    drop(demo_dir);
    Ok(ExitCode::SUCCESS)
}

/// Stops the process at once: an instance that cannot lead must not hold the lease.
fn fail(why: &str) -> ! {
    tracing::error!("stopping: {why}");
    eprintln!("error: stopping: {why}");
    std::process::exit(1)
}

/// Imports the topology given at start-up, and its stacks' compose files.
fn import(store: &wakehub_core::store::Store, (topology, stacks): Import) -> anyhow::Result<()> {
    let summary = store.import(&topology, Origin::Operator)?;
    crate::save_stack_sources(store, stacks)?;
    tracing::info!(
        added = summary.added.len(),
        updated = summary.updated.len(),
        removed = summary.removed.len(),
        "topology imported"
    );
    Ok(())
}

/// What runs only on the instance that leads, stopped at shutdown.
struct Leading {
    monitor: tokio::task::JoinHandle<()>,
    proxy: Option<tokio::task::JoinHandle<()>>,
    tcp_wakes: tokio::task::JoinHandle<()>,
    notifier: tokio::task::JoinHandle<()>,
    home_assistant: Option<tokio::task::JoinHandle<()>>,
    /// The file's lock or the lease, given up last.
    held: crate::database::Held,
}

impl Leading {
    /// Stops these; the lease or lock is handed back, to be given up once the engine stopped.
    async fn stop(self) -> crate::database::Held {
        self.notifier.abort();
        if let Some(ha) = self.home_assistant {
            ha.abort();
        }
        let _ = self.tcp_wakes.await;
        if let Some(p) = self.proxy {
            let _ = p.await;
        }
        self.monitor.abort();
        self.held
    }
}

/// Starts leading: a follower that took the lease over reads the journal to its end and
/// marks what its predecessor left unfinished interrupted; then the topology given is
/// imported, the machine actions and stack commands left running are reported interrupted
/// (the queued ones start), and the monitor, the proxy, the TCP wakes, the notifications and
/// the Home Assistant bridge run.
async fn lead(
    engine: Engine,
    held: crate::database::Held,
    import: Option<Import>,
    proxy_listener: Option<tokio::net::TcpListener>,
    options: &Options,
    stopping: tokio_util::sync::CancellationToken,
) -> anyhow::Result<Leading> {
    if !engine.is_leader() {
        engine.lead().await?;
        if let Some(i) = import {
            let store = engine.store().clone();
            tokio::task::spawn_blocking(move || self::import(&store, i)).await??;
        }
    }
    // Machine actions a previous run left running are reported interrupted (never run
    // again); the queued ones start.
    engine.resume_executions().await?;
    // Stack commands likewise (marked failed, `INTERRUPTED`); pending ones start.
    engine.resume_stacks().await?;
    let monitor =
        spawn_monitor(engine.clone(), options.monitor_every, options.discover_every, options.journal_retention);
    let proxy = match proxy_listener {
        None => None,
        Some(l) => Some(serve_proxy(&engine, l, options, stopping.clone())?),
    };
    let tcp_wakes = spawn_tcp_wakes(engine.clone(), stopping);
    // Notifications: the journal read in order from where the last run stopped, deliveries
    // apart from the engine.
    let notifier = tokio::spawn(wakehub_core::notify::Notifier::new(engine.clone()).run());
    let home_assistant = home_assistant(&engine, options)?.map(tokio::spawn);
    Ok(Leading { monitor, proxy, tcp_wakes, notifier, home_assistant, held })
}

/// The wake-on-request proxy on `l`, over HTTPS when a certificate is given, until `stop`.
fn serve_proxy(
    engine: &Engine,
    l: tokio::net::TcpListener,
    options: &Options,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use wakehub_graphql::proxy::{Proxy, router, tls};
    let until = async move { stop.cancelled().await };
    let served = match (&options.proxy_tls_cert, &options.proxy_tls_key) {
        (Some(cert), Some(key)) => {
            let proxy = router(Proxy::new_https(engine.clone())?);
            let l = tls::TlsListener::new(l, tls::server_config(cert, key)?)?;
            // `tap_io` gives the listener the peer address the proxy reads.
            let l = axum::serve::ListenerExt::tap_io(l, |_| {});
            tokio::spawn(async move {
                axum::serve(l, proxy.into_make_service_with_connect_info::<std::net::SocketAddr>())
                    .with_graceful_shutdown(until)
                    .await
            })
        }
        _ => {
            let proxy = router(Proxy::new(engine.clone())?);
            // Without TCP_NODELAY, a response's last segment waits for the client's delayed ACK.
            let l = axum::serve::ListenerExt::tap_io(l, |tcp: &mut tokio::net::TcpStream| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::warn!("cannot set TCP_NODELAY: {e}");
                }
            });
            tokio::spawn(async move {
                axum::serve(l, proxy.into_make_service_with_connect_info::<std::net::SocketAddr>())
                    .with_graceful_shutdown(until)
                    .await
            })
        }
    };
    Ok(tokio::spawn(async move {
        match served.await {
            Ok(Err(e)) => tracing::error!("the proxy stopped: {e}"),
            Err(e) => tracing::error!("the proxy stopped: {e}"),
            Ok(Ok(())) => {}
        }
    }))
}

/// Observes every node at start-up and then every `every` (30 s by default), so statuses stay current and
/// changes made outside WakeHub are journaled; prunes the journal and action logs past their
/// retention, begins the maintenance windows whose time came, fires the power schedules and
/// applies the inactivity rules. Supervised: each round runs as its own task,
/// so a round that fails (or panics) is logged and the next one runs all the same.
fn spawn_monitor(
    engine: Engine,
    every: Duration,
    discover_every: Duration,
    retention: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last_discovery: Option<std::time::Instant> = None;
        loop {
            let due = !discover_every.is_zero() && last_discovery.is_none_or(|at| at.elapsed() >= discover_every);
            if due {
                last_discovery = Some(std::time::Instant::now());
            }
            let round = tokio::spawn({
                let engine = engine.clone();
                async move {
                    match engine.store().run(|s| s.topology_shared()).await {
                        Ok(t) => {
                            engine.observe(&t).await;
                            if !retention.is_zero() {
                                let before = std::time::SystemTime::now()
                                    .checked_sub(retention)
                                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                                    .map_or(0, |d| d.as_millis() as i64);
                                match engine.store().run(move |s| s.prune_events(before)).await {
                                    Ok(0) => {}
                                    Ok(n) => tracing::info!(pruned = n, "journal events past their retention deleted"),
                                    Err(e) => tracing::error!("cannot prune the journal: {e}"),
                                }
                            }
                            // Machine action logs past their retention policy.
                            let now = std::time::SystemTime::now()
                                .duration_since(std::time::UNIX_EPOCH)
                                .map_or(0, |d| d.as_millis() as i64);
                            match engine.store().run(move |s| s.sweep_artifacts(now)).await {
                                Ok(0) => {}
                                Ok(n) => tracing::info!(swept = n, "action logs past their retention deleted"),
                                Err(e) => tracing::error!("cannot sweep action logs: {e}"),
                            }
                            // Maintenance windows whose time came (at most 30 s late).
                            match engine.fire_due_windows().await {
                                Ok(runs) => {
                                    for r in runs {
                                        tracing::info!(run = r.id, window = ?r.window, "scheduled maintenance began");
                                    }
                                }
                                Err(e) => tracing::error!("cannot check the maintenance windows: {e}"),
                            }
                            // Power schedules likewise.
                            match engine.fire_due_power_schedules().await {
                                Ok(fired) => {
                                    for (name, outcome) in fired {
                                        tracing::info!(schedule = %name, "power schedule fired: {outcome}");
                                    }
                                }
                                Err(e) => tracing::error!("cannot check the power schedules: {e}"),
                            }
                            // Meters: read each once, keep the samples the energy report needs.
                            if let Err(e) = engine.sample_meters().await {
                                tracing::error!("cannot read the power meters: {e}");
                            }
                            // Inactivity rules: measure, and stop what is idle.
                            if let Err(e) = engine.check_idle_observed().await {
                                tracing::error!("cannot check the inactivity rules: {e}");
                            }
                            if due {
                                discover_all(&engine, &t).await;
                            }
                        }
                        Err(e) => tracing::error!("cannot load the topology: {e}"),
                    }
                }
            });
            if let Err(e) = round.await {
                tracing::error!("a monitoring round ended abnormally (the next one runs as usual): {e}");
            }
            let next = if discover_every.is_zero() { every } else { every.min(discover_every) };
            tokio::time::sleep(next.max(Duration::from_secs(1))).await;
        }
    })
}

/// The Home Assistant bridge `--mqtt` asks for, acting as the token `--mqtt-as` names.
fn home_assistant(
    engine: &Engine,
    options: &Options,
) -> anyhow::Result<Option<impl std::future::Future<Output = ()> + Send + 'static>> {
    use wakehub_core::homeassistant::Identity;
    let Some(broker) = &options.mqtt else { return Ok(None) };
    let (host, port) = broker
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
        .with_context(|| format!("--mqtt {broker}: give HOST:PORT"))?;
    let name = options.mqtt_as.as_deref().context("--mqtt needs --mqtt-as TOKEN (whose role and scope apply)")?;
    let token = engine
        .store()
        .tokens()?
        .into_iter()
        .find(|t| t.name == name && t.revoked_at_ms.is_none())
        .with_context(|| format!("--mqtt-as {name}: no active API token of that name (wakehub token create)"))?;
    let mut ha = wakehub_core::homeassistant::Options::new(host, port);
    ha.username = options.mqtt_user.clone();
    ha.password = std::env::var("WAKEHUB_MQTT_PASSWORD").ok().map(wakehub_core::secrets::SecretString::new);
    ha.discovery_prefix = options.mqtt_prefix.clone();
    ha.tags = options.mqtt_tags.clone();
    use wakehub_core::homeassistant::BrokerTls;
    ha.tls = match (&options.mqtt_tls_fingerprint, options.mqtt_tls) {
        (Some(fp), _) => Some(BrokerTls::Pinned(fp.clone())),
        (None, true) => Some(BrokerTls::SystemRoots),
        (None, false) => None,
    };
    if let Some(tls) = &ha.tls {
        tls.client_config().map_err(|e| anyhow::anyhow!("--mqtt-tls-fingerprint: {e}"))?;
    }
    let who = Identity { name: token.name, role: token.role, scope: token.scope };
    Ok(Some(wakehub_core::homeassistant::run(engine.clone(), ha, who)))
}

/// Keeps the TCP wake listeners as the topology says (checked every 5 s), until `stop`.
fn spawn_tcp_wakes(engine: Engine, stop: tokio_util::sync::CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut wakes = wakehub_graphql::proxy::tcp::TcpWakes::default();
        let mut said = std::collections::BTreeSet::new();
        loop {
            for problem in wakes.reconcile(&engine).await {
                if said.insert(problem.clone()) {
                    tracing::error!("{problem}");
                }
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
        wakes.close();
    })
}

/// Runs discovery on every configured host that offers a platform (plugin hosts, such as a
/// BMC, are discovered on request); hosts without an endpoint configured are skipped
/// quietly.
async fn discover_all(engine: &Engine, topology: &wakehub_core::model::Topology) {
    use wakehub_core::model::NodeState;
    let hosts: Vec<_> = topology
        .nodes()
        .filter(|n| n.spec.state == NodeState::Configured)
        .filter(|n| !n.spec.offers.is_empty())
        .map(|n| (n.id, n.spec.name.clone()))
        .collect();
    for (id, name) in hosts {
        match engine.discover(id).await {
            Ok(r) if !r.added.is_empty() || !r.disappeared.is_empty() => tracing::info!(
                host = %name,
                added = r.added.len(),
                disappeared = r.disappeared.len(),
                "discovery"
            ),
            Ok(_) => {}
            Err(e) if matches!(e.code(), ErrorCode::InvalidConfig | ErrorCode::Unsupported | ErrorCode::Validation) => {
                tracing::debug!(host = %name, "not discovered: {e}");
            }
            Err(e) => tracing::warn!(host = %name, code = e.code().as_str(), "discovery failed: {e}"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
