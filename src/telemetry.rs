//! Logging: `tracing` to stderr (stdout is reserved for CLI results), text or JSON.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The environment variable of the log filter (read before any setting, so not one of them).
pub const LOG_FILTER_VAR: &str = "PORTCULLIS_LOG";

/// Installs the global subscriber. The filter comes from `PORTCULLIS_LOG`, then `RUST_LOG`,
/// default `info`. Calling it twice is harmless.
pub fn init(format: LogFormat) {
    let filter = std::env::var(LOG_FILTER_VAR)
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal; files and pipes get plain text.
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
