//! Logs in tests: `TEST_LOG=1` turns them on; [`capture_logs`] records everything for tests
//! that scan the logs (for secrets, for escaping).

/// Everything logged in this test process once [`capture_logs`] ran (debug and up; trace for
/// crmhost), for tests that scan logs for secrets.
static CAPTURED: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

#[derive(Clone, Copy)]
struct CaptureWriter;

impl std::io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs a global subscriber that records every log line (debug and up, trace for crmhost);
/// returns `false` if another subscriber was installed first (`TEST_LOG`), in which case the
/// caller cannot rely on the capture.
pub fn capture_logs() -> bool {
    static INSTALLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let filter = tracing_subscriber::EnvFilter::new(
            "debug,crmhost=trace,crm_sim=trace,cranelift_codegen=info,wasmtime=info,regalloc2=info,wasmtime_internal_cranelift=info",
        );
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .fmt_fields(crmhost::telemetry::text_fields())
            .with_writer(|| CaptureWriter)
            .try_init()
            .is_ok()
    })
}

/// What [`capture_logs`] recorded so far.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&CAPTURED.lock().unwrap_or_else(std::sync::PoisonError::into_inner)).into_owned()
}

/// Turns logs on for a test run when `TEST_LOG` is set.
pub fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        crmhost::telemetry::init();
    }
}
