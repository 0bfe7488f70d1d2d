//! `log.log`: plugin log lines, tagged with the plugin and connection, sanitised and capped per call.

use crate::plugins::bindings::crmhost::adapter::log::{self, Level};
use crate::plugins::runtime::CallState;

/// The longest line kept; the rest is cut (a plugin logging whole payloads should not fill disks).
const MAX_LINE_CHARS: usize = 2_000;

/// Per-call logging state.
#[derive(Debug)]
pub struct PluginLog {
    plugin: String,
    connection: String,
    remaining: u32,
    suppressed: u32,
}

impl PluginLog {
    /// A log allowing `lines` lines for this call.
    pub fn new(plugin: &str, connection: &str, lines: u32) -> Self {
        Self { plugin: plugin.to_owned(), connection: connection.to_owned(), remaining: lines, suppressed: 0 }
    }

    /// Lines dropped because the per-call cap was reached.
    pub fn suppressed(&self) -> u32 {
        self.suppressed
    }

    fn write(&mut self, level: Level, message: &str) {
        if self.remaining == 0 {
            self.suppressed = self.suppressed.saturating_add(1);
            return;
        }
        self.remaining -= 1;
        // Control characters would let a plugin forge log lines; cut long lines at a char boundary.
        let clean: String =
            message.chars().take(MAX_LINE_CHARS).map(|c| if c.is_control() { ' ' } else { c }).collect();
        let (plugin, connection) = (self.plugin.as_str(), self.connection.as_str());
        match level {
            Level::Trace => tracing::trace!(target: "crmhost::plugin", plugin, connection, "{clean}"),
            Level::Debug => tracing::debug!(target: "crmhost::plugin", plugin, connection, "{clean}"),
            Level::Info => tracing::info!(target: "crmhost::plugin", plugin, connection, "{clean}"),
            Level::Warn => tracing::warn!(target: "crmhost::plugin", plugin, connection, "{clean}"),
            Level::Error => tracing::error!(target: "crmhost::plugin", plugin, connection, "{clean}"),
        }
    }
}

impl log::Host for CallState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.log.write(level, &message);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_past_the_cap_are_counted_not_written() {
        let mut log = PluginLog::new("p", "c", 2);
        for _ in 0..5 {
            log.write(Level::Info, "x");
        }
        assert_eq!(log.suppressed(), 3);
    }
}
