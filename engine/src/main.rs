//! The `ringway` binary: parse the command line, load and validate the configuration, start
//! the workers, then wait for signals (SIGTERM/SIGINT drain and exit, SIGHUP reloads).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use engine::config::{self, Config};
use engine::{IoDriver, StartOptions};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

#[global_allocator]
static GLOBAL: engine::Allocator = engine::Allocator;

/// An io_uring, thread-per-core edge and service proxy.
#[derive(Parser, Debug)]
#[command(name = "ringway", version, about)]
struct Cli {
    /// Configuration file (TOML). Without it, the embedded default configuration is served.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Validate the configuration and exit: 0 when valid, 1 with the error otherwise.
    #[arg(long)]
    check: bool,

    /// Quick mode: listen here and proxy everything to --upstream, no file needed.
    #[arg(
        long,
        value_name = "ADDR",
        requires = "upstream",
        conflicts_with = "config"
    )]
    listen: Option<String>,

    /// Quick mode: upstream endpoints, comma separated (round robin).
    #[arg(
        long,
        value_name = "ADDR[,ADDR]",
        requires = "listen",
        value_delimiter = ','
    )]
    upstream: Vec<String>,

    /// Worker threads (overrides the file's `workers`).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,

    /// Admin listener address for quick mode (default 127.0.0.1:9901; "off" disables).
    #[arg(long, value_name = "ADDR")]
    admin: Option<String>,
}

fn main() -> ExitCode {
    allocator_options();
    init_logging();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringway: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The configuration text and the name errors should mention.
fn config_source(cli: &Cli) -> anyhow::Result<(String, String)> {
    if let Some(listen) = &cli.listen {
        return Ok((
            quick_config(listen, &cli.upstream, cli.admin.as_deref()),
            "<command line>".into(),
        ));
    }
    match &cli.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Ok((text, path.display().to_string()))
        }
        None => Ok((
            config::DEFAULT_CONFIG.to_owned(),
            "<embedded config.toml>".into(),
        )),
    }
}

fn load(cli: &Cli) -> anyhow::Result<Config> {
    let (text, origin) = config_source(cli)?;
    // Relative paths in a config file (TLS certificates and keys) are taken from the file's
    // directory, not from wherever ringway was started; the embedded and command-line
    // configs have none.
    let dir = match (&cli.listen, &cli.config) {
        (None, Some(path)) => path.parent().unwrap_or_else(|| Path::new("")),
        _ => Path::new(""),
    };
    let mut cfg = config::parse_str_in(&text, &origin, dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(n) = cli.workers {
        anyhow::ensure!(
            (1..=config::validate::MAX_WORKERS).contains(&n),
            "--workers must be 1..=1024"
        );
        cfg.workers = n;
    }
    Ok(cfg)
}

/// TOML for `--listen A --upstream B,C`: one listener, one catch-all route, one cluster.
fn quick_config(listen: &str, upstreams: &[String], admin: Option<&str>) -> String {
    let endpoints: Vec<String> = upstreams.iter().map(|u| format!("{u:?}")).collect();
    let admin = match admin {
        Some("off") => "[admin]\nenabled = false\n".to_owned(),
        Some(a) => format!("[admin]\naddress = {a:?}\n"),
        None => String::new(),
    };
    format!(
        "{admin}\n[[listeners]]\nname = \"quick\"\naddress = {listen:?}\n\
         [[listeners.virtual_hosts]]\nname = \"quick\"\ndomains = [\"*\"]\n\
         [[listeners.virtual_hosts.routes]]\nprefix = \"/\"\ncluster = \"upstream\"\n\
         [[clusters]]\nname = \"upstream\"\nendpoints = [{}]\n",
        endpoints.join(", ")
    )
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let cfg = load(&cli)?;
    if cli.check {
        println!("configuration is valid");
        return Ok(());
    }
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .context("cannot install signal handlers")?;
    let workers = cfg.workers;
    let tls_listeners: Vec<String> = cfg
        .listeners
        .iter()
        .filter(|l| l.tls.is_some())
        .map(|l| l.name.clone())
        .collect();
    let handle = engine::start(
        cfg,
        StartOptions {
            driver: IoDriver::from_env(),
            ..Default::default()
        },
    )?;
    for (name, addr) in handle.listeners() {
        let scheme = if tls_listeners.contains(name) {
            "https"
        } else {
            "http"
        };
        println!("ringway: listener {name} on {scheme}://{addr}");
    }
    if let Some(admin) = handle.admin() {
        println!("ringway: admin on http://{admin}");
    }
    println!("ringway: {workers} worker(s); send SIGTERM or press Ctrl-C to drain and exit");
    let _ = std::io::stdout().flush();

    for signal in signals.forever() {
        match signal {
            SIGHUP => match load(&cli) {
                Ok(cfg) => match handle.reload(cfg) {
                    Ok(()) => log::info!("configuration reloaded"),
                    Err(e) => log::error!("reload refused, old configuration still serving: {e}"),
                },
                Err(e) => log::error!("reload refused, old configuration still serving: {e:#}"),
            },
            _ => {
                log::info!("draining (signal {signal})");
                handle.shutdown();
                log::info!("drained, exiting");
                return Ok(());
            }
        }
    }
    Ok(())
}

/// mimalloc options that keep idle memory low, measured with bench/run.sh (5,000 idle
/// keep-alive connections opened 250 at a time): with the defaults the memory of each burst of
/// requests stays resident (about 6 KB per idle connection afterwards). Freed pages are purged
/// 100 ms after they were freed, and each worker runs `mi_collect` once a second
/// (the worker's housekeeping) so the purge happens even when the worker has gone quiet: about
/// 0.4 KB per idle connection a few seconds after the burst, and a base RSS of 7 MiB with
/// arenas committed lazily. Purging at once (`MIMALLOC_PURGE_DELAY=0`, used before) gave the
/// same idle figure but cost about 0.8 page faults per proxied request under load, several
/// CPU microseconds each. mimalloc reads these from the environment when the process starts,
/// before `main`, so when they are unset the process re-executes itself with them (same PID,
/// same arguments). Values the operator sets are left alone; `RINGWAY_ALLOCATOR_DEFAULTS=1`
/// skips this.
fn allocator_options() {
    use std::os::unix::process::CommandExt as _;
    const OPTIONS: [(&str, &str); 2] = [
        ("MIMALLOC_PURGE_DELAY", "100"),
        ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
    ];
    if std::env::var_os("RINGWAY_ALLOCATOR_DEFAULTS").is_some()
        || OPTIONS.iter().all(|(k, _)| std::env::var_os(k).is_some())
    {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.args(std::env::args_os().skip(1));
    for (k, v) in OPTIONS {
        if std::env::var_os(k).is_none() {
            cmd.env(k, v);
        }
    }
    // Only returns on failure; then run with mimalloc's defaults.
    let err = cmd.exec();
    eprintln!("ringway: could not re-execute with allocator options ({err}); using defaults");
}

/// Logs go to stderr; `RINGWAY_LOG=debug|info|warn|error` sets the level (default info).
fn init_logging() {
    struct Stderr;
    impl log::Log for Stderr {
        fn enabled(&self, m: &log::Metadata<'_>) -> bool {
            m.level() <= log::max_level()
        }
        fn log(&self, r: &log::Record<'_>) {
            if self.enabled(r.metadata()) {
                eprintln!("ringway {} {}: {}", r.level(), r.target(), r.args());
            }
        }
        fn flush(&self) {}
    }
    static LOGGER: Stderr = Stderr;
    let level = match std::env::var("RINGWAY_LOG").as_deref() {
        Ok("debug") => log::LevelFilter::Debug,
        Ok("trace") => log::LevelFilter::Trace,
        Ok("warn") => log::LevelFilter::Warn,
        Ok("error") => log::LevelFilter::Error,
        Ok("off") => log::LevelFilter::Off,
        _ => log::LevelFilter::Info,
    };
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
