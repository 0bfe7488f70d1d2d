//! Per-plugin sandbox limits: what one call may use. Defaults are generous for CRM work (a page of
//! 200 records is well under a megabyte) and tight enough that a runaway plugin cannot hurt the host.
//! Operators override them per plugin in the configuration file.

use serde::Deserialize;

/// Limits applied to every call of one plugin.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginLimits {
    /// Linear memory per instance. 64 MiB holds many pages of records with room to spare.
    pub memory_bytes: u64,
    /// CPU time inside the guest per call (host calls excluded). Adapters mostly shuffle JSON;
    /// 5 s is orders of magnitude above what a 200-record page costs.
    pub cpu_ms: u64,
    /// Wall-clock time per call, including time blocked in `http.send`. A CRM call can be slow;
    /// a call issuing several requests needs room, but never minutes.
    pub wall_ms: u64,
    /// Largest request body a plugin may send (a 200-record batch is ~100 KiB).
    pub http_request_bytes: u64,
    /// Largest response body the host buffers for the plugin (host memory the guest limit does not count).
    pub http_response_bytes: u64,
    /// Per-request timeout; a plugin may ask for less, never more.
    pub http_timeout_ms: u64,
    /// Requests one call may send. Paging belongs to the host (one page per call), so a pull
    /// needs a handful; a push of 200 records to a CRM without batch endpoints needs a lookup and
    /// a write each (Pipedrive's), hence five per record of a full batch. A plugin looping on
    /// requests hits this.
    pub http_requests_per_call: u32,
    /// Log lines one call may write; the rest are counted and reported as suppressed.
    pub log_lines_per_call: u32,
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            cpu_ms: 5_000,
            wall_ms: 60_000,
            http_request_bytes: 8 << 20,
            http_response_bytes: 16 << 20,
            http_timeout_ms: 30_000,
            http_requests_per_call: 1_000,
            log_lines_per_call: 200,
        }
    }
}

impl PluginLimits {
    /// Checks the limits make sense under the host's hard ceiling on memory per instance.
    pub fn validate(&self, max_memory_bytes: u64) -> Result<(), String> {
        let positive = [
            ("memory_bytes", self.memory_bytes),
            ("cpu_ms", self.cpu_ms),
            ("wall_ms", self.wall_ms),
            ("http_request_bytes", self.http_request_bytes),
            ("http_response_bytes", self.http_response_bytes),
            ("http_timeout_ms", self.http_timeout_ms),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("`{name}` must be greater than 0"));
        }
        if self.memory_bytes > max_memory_bytes {
            return Err(format!(
                "`memory_bytes` = {} is above the host maximum of {max_memory_bytes} (set by `max_plugin_memory_bytes`)",
                self.memory_bytes
            ));
        }
        Ok(())
    }

    /// CPU budget in epoch ticks.
    pub(crate) fn cpu_ticks(&self, tick_ms: u64) -> u64 {
        self.cpu_ms.div_ceil(tick_ms.max(1)).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(PluginLimits::default().validate(256 << 20), Ok(()));
    }

    #[test]
    fn a_zero_limit_is_rejected_by_name() {
        let limits = PluginLimits { cpu_ms: 0, ..PluginLimits::default() };
        let err = limits.validate(256 << 20).unwrap_err();
        assert!(err.contains("cpu_ms"), "{err}");
    }

    #[test]
    fn memory_above_the_host_ceiling_is_rejected() {
        let limits = PluginLimits { memory_bytes: 512 << 20, ..PluginLimits::default() };
        assert!(limits.validate(256 << 20).is_err());
    }

    #[test]
    fn cpu_budget_rounds_up_to_whole_ticks() {
        let limits = PluginLimits { cpu_ms: 25, ..PluginLimits::default() };
        assert_eq!(limits.cpu_ticks(10), 3);
    }
}
