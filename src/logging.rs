//! slog set-up: a level filter, then an async drain with a sized buffer, then the
//! terminal or JSON format. Records that would overflow the buffer are dropped and the
//! drop is reported (the log thread never blocks an actor). The `log` crate, which actix
//! and rumqttc use, is bridged into the same drain.

use slog::{o, Drain, Level, Logger};

use crate::config::{LogFormat, LogLevel, LogSettings};

/// Keeps the log thread and the `log` bridge alive; drop it last, after the system stops,
/// so the final records are written.
pub struct LogGuard {
    _scope: slog_scope::GlobalLoggerGuard,
    _async: slog_async::AsyncGuard,
}

pub fn level(level: LogLevel) -> Level {
    match level {
        LogLevel::Critical => Level::Critical,
        LogLevel::Error => Level::Error,
        LogLevel::Warning => Level::Warning,
        LogLevel::Info => Level::Info,
        LogLevel::Debug => Level::Debug,
        LogLevel::Trace => Level::Trace,
    }
}

pub fn init(settings: &LogSettings) -> (Logger, LogGuard) {
    let format: Box<dyn Drain<Ok = (), Err = slog::Never> + Send> = match settings.format {
        LogFormat::Term => {
            let decorator = slog_term::TermDecorator::new().stderr().build();
            Box::new(slog_term::FullFormat::new(decorator).build().fuse())
        }
        LogFormat::Json => Box::new(
            slog_json::Json::new(std::io::stderr())
                .add_default_keys()
                .build()
                .fuse(),
        ),
    };
    let (drain, async_guard) = slog_async::Async::new(format)
        .chan_size(settings.buffer)
        .overflow_strategy(slog_async::OverflowStrategy::DropAndReport)
        .thread_name("eliot-log".into())
        .build_with_guard();
    // Filtering before the channel keeps debug records off it entirely at level info.
    let drain = drain.filter_level(level(settings.level)).fuse();
    let logger = Logger::root(drain, o!("app" => "eliot"));
    let scope = slog_scope::set_global_logger(logger.clone());
    let _ = slog_stdlog::init_with_level(log_level(settings.level));
    (
        logger,
        LogGuard {
            _scope: scope,
            _async: async_guard,
        },
    )
}

fn log_level(level: LogLevel) -> log::Level {
    match level {
        LogLevel::Critical | LogLevel::Error => log::Level::Error,
        LogLevel::Warning => log::Level::Warn,
        LogLevel::Info => log::Level::Info,
        LogLevel::Debug => log::Level::Debug,
        LogLevel::Trace => log::Level::Trace,
    }
}
