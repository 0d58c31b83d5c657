//! The `eliot` command line: `eliot [--config PATH] [run | check-config | device ... |
//! api-token ...]`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use std::sync::Arc;

use eliot_actors::{credentials, Event, Metrics, Telemetry};

use crate::app;
use crate::config::{Config, Sources};
use crate::logging;

#[derive(Parser)]
#[command(name = "eliot", version, about = "IoT telemetry ingestion server")]
struct Cli {
    /// A TOML file applied over the embedded defaults and the ELIOT_ENV overlay.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Run,
    /// Print the effective configuration, or every error in it (exit status 2).
    CheckConfig,
    /// Provision devices: their secrets are shown once, and only a hash is kept. Rotating
    /// or removing a device closes its connections to a running Eliot within a second.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// API tokens for /api/v1: Eliot keeps only their hashes.
    #[command(subcommand)]
    ApiToken(ApiTokenCommand),
}

#[derive(Subcommand)]
enum ApiTokenCommand {
    /// Print a fresh random token (give it to the client; it is shown this once) and the
    /// line to add to `[api] tokens`, which holds its hash.
    New {
        /// read (GET only) or admin (everything).
        #[arg(long, default_value = "read")]
        role: String,
    },
    /// Read a token on standard input (one line) and print the line to add to
    /// `[api] tokens` for it.
    Hash {
        #[arg(long, default_value = "read")]
        role: String,
    },
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// Create a device; its secret is printed once, alone on the last line. A device may
    /// also log in with a client certificate naming it, where auth.mode accepts them.
    Add {
        device_id: String,
        /// Create it without a secret: it logs in with a client certificate naming it,
        /// only (auth.mode = certificate or password_or_certificate).
        #[arg(long)]
        certificate: bool,
    },
    /// List the provisioned devices and how each logs in (never their secrets).
    List,
    /// Give a device a new secret (printed once, alone on the last line); the old one
    /// stops working at once, and a running Eliot closes the device's connections.
    Rotate { device_id: String },
    /// Remove a device: neither its secret nor a certificate naming it logs in any more,
    /// and a running Eliot closes its connections.
    Remove { device_id: String },
}

/// Exit status after a child exceeded its restart intensity (EX_SOFTWARE).
pub const ESCALATED: u8 = 70;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Needs no configuration: it is what a configuration refused for want of tokens needs.
    if let Some(Command::ApiToken(command)) = cli.command {
        return api_token(command);
    }
    let config = match Config::load(&Sources::from_process_env(cli.config)) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("eliot: the configuration has {} error(s):", errors.len());
            for error in errors {
                eprintln!("  {error}");
            }
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Run) {
        Command::CheckConfig => {
            print!("{}", config.to_toml());
            ExitCode::SUCCESS
        }
        Command::Run => run(&config),
        Command::Device(command) => device(&config, command),
        Command::ApiToken(_) => unreachable!("answered before the configuration is read"),
    }
}

/// `eliot api-token new|hash`.
fn api_token(command: ApiTokenCommand) -> ExitCode {
    use crate::http::v1::tokens::{self, HashedToken, Role};
    let role_named = |role: &str| match role {
        "read" => Ok(Role::Read),
        "admin" => Ok(Role::Admin),
        _ => Err(format!(
            "unknown role `{}`: read or admin",
            role.escape_debug()
        )),
    };
    let done = match command {
        ApiTokenCommand::New { role } => role_named(&role)
            .and_then(tokens::new_token)
            .map(|(token, kept)| {
                println!("# The token, shown this once: give it to the client (Authorization: Bearer <token>).");
                println!("{token}");
                println!("# The line to add to [api] tokens (its hash; Eliot keeps nothing else):");
                println!("\"{}\"", kept.line());
            }),
        ApiTokenCommand::Hash { role } => role_named(&role).and_then(|role| {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| format!("cannot read standard input: {e}"))?;
            let token = line.trim_end_matches(['\r', '\n']);
            if token.chars().count() < tokens::MIN_TOKEN_LEN {
                return Err(format!(
                    "a token must have at least {} characters",
                    tokens::MIN_TOKEN_LEN
                ));
            }
            println!("\"{}\"", HashedToken::of(role, token).line());
            Ok(())
        }),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("eliot: {e}");
            ExitCode::from(2)
        }
    }
}

/// `eliot device ...`, on the database of the configuration (beside a running Eliot too).
fn device(config: &Config, command: DeviceCommand) -> ExitCode {
    let create = matches!(command, DeviceCommand::Add { .. });
    let db = match eliot_actors::Store::admin(&config.store, create) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("eliot: {e}");
            return ExitCode::FAILURE;
        }
    };
    let done = match command {
        DeviceCommand::Add {
            device_id,
            certificate: true,
        } => credentials::add_certificate_only(&db, &device_id).map(|()| {
            println!("device `{device_id}` added: it logs in with a client certificate naming it");
        }),
        DeviceCommand::Add {
            device_id,
            certificate: false,
        } => credentials::add(&db, &device_id).map(|secret| {
            println!("device `{device_id}` added. Its secret, shown this once (keep it):");
            println!("{}", secret.expose());
        }),
        DeviceCommand::Rotate { device_id } => credentials::rotate(&db, &device_id).map(|secret| {
            println!("device `{device_id}` has a new secret, shown this once (keep it):");
            println!("{}", secret.expose());
        }),
        DeviceCommand::Remove { device_id } => {
            credentials::remove(&db, &device_id).map(|()| println!("device `{device_id}` removed"))
        }
        DeviceCommand::List => credentials::list(&db).map(|devices| {
            println!(
                "{:<40} {:<12} {:<28} rotated at",
                "device", "login", "created at"
            );
            for d in devices {
                let rotated = d.rotated_at.as_deref().unwrap_or("-");
                let login = d.login.name();
                println!(
                    "{:<40} {login:<12} {:<28} {rotated}",
                    d.device_id, d.created_at
                );
            }
        }),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("eliot: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: &Config) -> ExitCode {
    let _fault_points = eliot_actors::fault_points_from_env();
    let (log, guard) = logging::init(&config.log);
    let metrics = match config.metrics.enabled {
        true => Metrics::new(),
        false => Metrics::disabled(),
    };
    let telemetry = Telemetry::new(log, Arc::new(metrics));
    let config = &fit_descriptor_limit(config.clone(), &telemetry);
    let listeners = match app::Listeners::bind(config) {
        Ok(listeners) => listeners,
        Err(e) => {
            Event::StartFailed {
                error: &e.to_string(),
            }
            .emit(&telemetry);
            drop(telemetry);
            drop(guard);
            return ExitCode::FAILURE;
        }
    };
    let system = actix_rt::System::new();
    let served = system.block_on(async {
        let shutdown = app::shutdown_signal(telemetry.clone(), config.tls.enabled);
        app::serve(config, listeners, shutdown, &telemetry).await
    });
    let code = match served {
        Ok(_) => ExitCode::SUCCESS,
        Err(app::ServeError::Start(e)) => {
            Event::StartFailed {
                error: &e.to_string(),
            }
            .emit(&telemetry);
            ExitCode::FAILURE
        }
        // Logged as `escalated` when it happened; the status tells the outer supervisor.
        Err(app::ServeError::Escalated(_)) => ExitCode::from(ESCALATED),
    };
    drop(telemetry);
    drop(guard);
    code
}

/// Descriptors kept for what is not a device connection (the database, its WAL, the log,
/// HTTP clients, the upstream link), out of a limit of at least twice this many.
const RESERVED_DESCRIPTORS: u64 = 256;

/// Every device connection holds a file descriptor: raises the soft limit as far as the
/// hard limit allows. Where that is still short of what `mqtt.max_connections` wants,
/// Eliot takes the connections it can hold, not more, and says so once, here: past it,
/// accepts would fail for every new socket, and for the database's own files.
fn fit_descriptor_limit(mut config: Config, telemetry: &Telemetry) -> Config {
    let wanted = config.mqtt.max_connections as u64 + RESERVED_DESCRIPTORS;
    match rlimit::increase_nofile_limit(wanted) {
        Ok(got) if got >= wanted => {}
        Ok(got) => {
            let reserved = RESERVED_DESCRIPTORS.min(got / 2);
            let fitted = usize::try_from(got - reserved).unwrap_or(usize::MAX).max(1);
            config.mqtt.max_connections = config.mqtt.max_connections.min(fitted);
            Event::DescriptorLimit {
                limit: Some(got),
                wanted,
                max_connections: config.mqtt.max_connections,
                error: None,
            }
            .emit(telemetry)
        }
        Err(e) => Event::DescriptorLimit {
            limit: None,
            wanted,
            max_connections: config.mqtt.max_connections,
            error: Some(&e.to_string()),
        }
        .emit(telemetry),
    }
    config
}
