//! Logging: human-readable by default, JSON lines with `log.format = "json"`.

use crate::config::{LogFormat, LogSettings};
use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber once; later calls (tests start many apps) are ignored.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match settings.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}
