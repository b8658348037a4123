//! The `ringhub` binary: parse the command line, load the configuration, run the hub until
//! SIGTERM or SIGINT (SIGHUP reloads what `hub::reload` lists), drain, exit.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ringhub::auth::{mint, MintOptions};
use ringhub::config::{env, Config};
use ringhub::Hub;

/// Exit status for a configuration that cannot be used (EX_USAGE).
const EXIT_CONFIG: u8 = 64;
/// Exit status after a shard thread died (EX_SOFTWARE): the orchestrator restarts the hub.
const EXIT_SHARD_DIED: u8 = 70;

#[derive(Parser)]
#[command(
    name = "ringhub",
    version,
    about = "A thread-per-core WebSocket hub for real-time games"
)]
struct Cli {
    /// TOML configuration file (also RINGHUB_CONFIG).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Public address, e.g. 0.0.0.0:8080.
    #[arg(long)]
    listen: Option<String>,
    /// Admin address, e.g. 127.0.0.1:9090.
    #[arg(long)]
    admin_listen: Option<String>,
    /// Shard threads (default: the CPUs this process may use).
    #[arg(long)]
    shards: Option<String>,
    /// io_uring, epoll or auto.
    #[arg(long)]
    driver: Option<String>,
    /// Any top-level setting, as KEY=VALUE (repeatable), e.g. --set ping_interval=5s.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print a token signed with the configured HS secret.
    Token {
        #[arg(long)]
        user: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// Channel patterns the user may subscribe to, comma-separated.
        #[arg(long, value_delimiter = ',')]
        channels: Vec<String>,
        /// Channel patterns the user may publish to, comma-separated.
        #[arg(long, value_delimiter = ',')]
        publish: Vec<String>,
        /// Token id (for revocation).
        #[arg(long)]
        jti: Option<String>,
    },
    /// Check the configuration (the API key file included), then send SIGHUP to the hub
    /// so that it reloads: `kubectl exec <pod> -- ringhub reload`, where the hub is PID 1.
    Reload {
        #[arg(long, default_value_t = 1)]
        pid: i32,
    },
    /// Exit 0 when the hub's admin port answers `GET /health` with 200 (container health
    /// checks, where there is no curl).
    Health,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match load(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ringhub: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match cli.command {
        Some(Command::Token {
            user,
            ttl,
            channels,
            publish,
            jti,
        }) => {
            if config.jwt_secret.is_empty() {
                eprintln!("ringhub: no jwt_secret configured (set {}); a hub's random secret is not known outside it", env::JWT_SECRET);
                return ExitCode::from(EXIT_CONFIG);
            }
            let opts = MintOptions {
                user,
                ttl,
                channels,
                publish,
                jti,
                issuer: config.jwt_issuer.clone(),
                audience: config.jwt_audience.clone(),
                ..MintOptions::default()
            };
            println!("{}", mint(config.jwt_secret.as_bytes(), &opts));
            ExitCode::SUCCESS
        }
        Some(Command::Health) => health(&config),
        Some(Command::Reload { pid }) => match ringhub::sys::kill(pid, libc::SIGHUP) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ringhub: cannot signal process {pid}: {e}");
                ExitCode::FAILURE
            }
        },
        None => serve(config),
    }
}

fn load(cli: &Cli) -> Result<Config, ringhub::config::ConfigError> {
    let named = [
        ("listen", &cli.listen),
        ("admin_listen", &cli.admin_listen),
        ("shards", &cli.shards),
        ("driver", &cli.driver),
    ];
    let mut flags: Vec<(String, String)> = named
        .into_iter()
        .filter_map(|(key, value)| Some((key.to_string(), value.clone()?)))
        .collect();
    for kv in &cli.set {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| ringhub::config::ConfigError::Value {
                key: kv.clone(),
                message: "expected KEY=VALUE".into(),
            })?;
        flags.push((k.trim().to_string(), v.trim().to_string()));
    }
    let config = Config::load_with_flags(cli.config.clone(), std::env::vars(), flags)?;
    config.validate()?;
    Ok(config)
}

fn init_logging(spec: &str) {
    let mut json = false;
    let filter: Vec<&str> = spec
        .split(',')
        .filter(|part| {
            let is_json = part.trim() == "json";
            json |= is_json;
            !is_json && part.trim() != "text"
        })
        .collect();
    let filter = tracing_subscriber::EnvFilter::try_new(filter.join(","))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

/// `GET /health` on the configured admin address (loopback when it is a wildcard).
fn health(config: &Config) -> ExitCode {
    use std::io::{Read, Write};
    let mut addr = config.admin_listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let timeout = std::time::Duration::from_secs(2);
    let answer = (|| -> std::io::Result<String> {
        let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut head = [0u8; 64];
        let n = s.read(&mut head)?;
        Ok(String::from_utf8_lossy(&head[..n]).into_owned())
    })();
    match answer {
        Ok(a) if a.starts_with("HTTP/1.1 200") => ExitCode::SUCCESS,
        Ok(a) => {
            eprintln!(
                "ringhub: {addr}/health answered {:?}",
                a.lines().next().unwrap_or("")
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("ringhub: cannot reach {addr}/health: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(mut config: Config) -> ExitCode {
    init_logging(&config.log);
    if let Some(files) = ringhub::sys::raise_nofile_limit() {
        tracing::info!(max_open_files = files, "file limit");
    }
    let demo = config.jwt_secret.is_empty();
    let open_demo = demo && config.namespaces.is_empty();
    if open_demo {
        // Only holders of the demo token below can connect: let them do what the README
        // shows, publish on any channel their token allows.
        let open = ringhub::config::Namespace {
            client_publish: true,
            ..Default::default()
        };
        let other = ringhub::config::OTHER_NAMESPACES.to_string();
        config.namespaces.insert(other, open);
    }
    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ]);
    let mut signals = match signals {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ringhub: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sighup = match ringhub::hub::reload::Sighup::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ringhub: cannot install the SIGHUP handler: {e}");
            return ExitCode::FAILURE;
        }
    };
    let hub = match Hub::start(config) {
        Ok(hub) => hub,
        Err(e @ (ringhub::hub::StartError::Config(_) | ringhub::hub::StartError::Keys(_))) => {
            eprintln!("ringhub: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
        Err(e) => {
            eprintln!("ringhub: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = sighup.serve(hub.reloads().clone()) {
        tracing::error!(error = %e, "cannot start the reload thread; SIGHUP reloads nothing");
    }
    if demo {
        let opts = MintOptions {
            user: "demo".into(),
            ttl: 24 * 3600,
            channels: vec!["*".into()],
            publish: vec!["*".into()],
            ..MintOptions::default()
        };
        let token = mint(hub.secret(), &opts);
        let addr = hub.local_addr();
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            addr.ip().to_string()
        };
        tracing::warn!(
            "no {} set: using a random secret, for development only",
            env::JWT_SECRET
        );
        if open_demo {
            tracing::warn!(
                "no namespaces configured: clients may publish on every channel (development only)"
            );
        }
        tracing::info!(user = "demo", "demo token: {token}");
        tracing::info!("connect: ws://{host}:{}/ws?token={token}", addr.port());
    }
    // The library leaves a dead shard to its user (tests run hubs in-process); the binary
    // drains what still serves and exits non-zero, so that it is restarted.
    let (signal_tx, signal_rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        for signal in signals.forever() {
            let _ = signal_tx.send(signal);
        }
    });
    let code = crossbeam_channel::select! {
        recv(signal_rx) -> signal => {
            tracing::info!(signal = signal.unwrap_or_default(), "draining");
            ExitCode::SUCCESS
        }
        recv(hub.shard_died()) -> shard => {
            tracing::error!(shard = shard.unwrap_or_default(), "a shard died: draining the others, then exiting");
            ExitCode::from(EXIT_SHARD_DIED)
        }
    };
    hub.shutdown();
    code
}
