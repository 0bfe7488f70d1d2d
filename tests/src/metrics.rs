//! Figures benchmarks print: this process's memory, from Linux's `/proc/self/status`, and
//! percentiles of samples.

/// A `/proc/self/status` figure (`VmHWM`, `VmRSS`, …) in MiB; 0 elsewhere.
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// The peak resident set size of this process so far (Linux `VmHWM`), in MiB; 0 elsewhere.
pub fn peak_rss_mib() -> f64 {
    status_mib("VmHWM")
}

/// The resident set size of this process now (Linux `VmRSS`), in MiB; 0 elsewhere.
pub fn current_rss_mib() -> f64 {
    status_mib("VmRSS")
}

/// Resets the kernel's peak-RSS mark of this process to its current size (Linux `clear_refs` 5).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The `p` quantile (0.0 to 1.0, nearest rank) of `sorted` samples; `None` when there are none.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    let last = sorted.len().checked_sub(1)?;
    let rank = (last as f64 * p.clamp(0.0, 1.0)).round() as usize;
    Some(sorted[rank.min(last)])
}
