//! Python for tests that run the CRMs' official clients or Schemathesis: a virtualenv with
//! pinned requirements.

use std::path::{Path, PathBuf};

/// Whether a check that needs Python must run (CI, or `CRMHOST_REQUIRE_PYTHON=1`) rather than be
/// skipped with a message where `python3 -m venv` is missing.
pub fn python_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") || std::env::var_os("CRMHOST_REQUIRE_PYTHON").is_some()
}

/// The python of the virtualenv `venv` (a test passes one under `CARGO_TARGET_TMPDIR`) with the
/// pinned `requirements` file installed (once; again when the file changes), or `None` to skip
/// where Python is missing and not required.
pub fn python_venv(venv: &Path, requirements: &Path) -> Option<PathBuf> {
    let pinned = std::fs::read_to_string(requirements).expect("the requirements file");
    let python = venv.join("bin").join("python");
    let marker = venv.join("installed-requirements.txt");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(pinned.as_str()) && python.exists() {
        return Some(python);
    }
    let created = std::process::Command::new("python3").args(["-m", "venv", "--clear"]).arg(venv).status();
    if !created.is_ok_and(|s| s.success()) {
        assert!(!python_required(), "python3 with the venv module is required here (CI)");
        eprintln!("skipping: python3 -m venv is not available");
        return None;
    }
    let installed = std::process::Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(requirements)
        .status()
        .expect("pip runs");
    assert!(installed.success(), "pip could not install {}", requirements.display());
    std::fs::write(&marker, pinned).expect("marker written");
    Some(python)
}
