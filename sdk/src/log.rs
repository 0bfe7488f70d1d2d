//! Logging through the host, which tags each line with the plugin and connection and rate-limits it.

use crate::bindings::crmhost::adapter::log::Level;

/// Writes one line: through the host in a component; to standard error off wasm (a plugin's own
/// unit tests), where there is no host.
fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::crmhost::adapter::log::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

/// Logs at trace level.
pub fn trace(message: &str) {
    log(Level::Trace, message);
}

/// Logs at debug level.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Logs at info level.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Logs at warn level.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Logs at error level.
pub fn error(message: &str) {
    log(Level::Error, message);
}
