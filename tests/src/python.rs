//! Python for tests that run the CRMs' official clients or Schemathesis (a virtualenv with
//! pinned requirements), and plugins written in Python, built with componentize-py.

use std::path::{Path, PathBuf};

/// Whether a check that needs Python must run (CI, or `CRMHOST_REQUIRE_PYTHON=1`) rather than be
/// skipped with a message where `python3 -m venv` is missing.
pub fn python_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") || std::env::var_os("CRMHOST_REQUIRE_PYTHON").is_some()
}

/// The python of the virtualenv `venv` (a test passes one under `CARGO_TARGET_TMPDIR`) with the
/// pinned `requirements` file installed (once; again when the file changes), or `None` to skip
/// where Python is missing and not required. Tests running at once share a venv: a lock file
/// beside it lets one create it while the others wait (two `venv --clear` at once break each other).
pub fn python_venv(venv: &Path, requirements: &Path) -> Option<PathBuf> {
    let pinned = std::fs::read_to_string(requirements).expect("the requirements file");
    let _creating = lock_beside(venv);
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

/// An exclusive lock on `<path>.lock`, held until the returned file drops; `flock` locks conflict
/// between threads of one process as well as between processes.
fn lock_beside(path: &Path) -> std::fs::File {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("the venv's parent directory");
    }
    let lock = std::fs::File::create(path.with_extension("lock")).expect("the venv's lock file");
    lock.lock().expect("the venv's lock is taken");
    lock
}

/// The tests' Python plugin (`tests/plugins/python-probe`).
pub fn python_probe_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins").join("python-probe")
}

/// Builds the Python probe against the repository's contract, with the venv and the component
/// under `tmp` (a test's `CARGO_TARGET_TMPDIR`); `None` where Python is missing and not required.
pub fn build_python_probe(tmp: &Path) -> Option<Vec<u8>> {
    let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("wit");
    componentize(tmp, &python_probe_dir(), &wit, "python-probe.wasm")
}

/// Builds the Python plugin in `dir` (its `app.py`) against the contract in `wit` with the
/// componentize-py the tests pin (venv and output under `tmp`), or `None` where Python is missing
/// and not required.
pub fn componentize(tmp: &Path, dir: &Path, wit: &Path, out_name: &str) -> Option<Vec<u8>> {
    let python = python_venv(&tmp.join("py-componentize"), &python_probe_dir().join("requirements.txt"))?;
    let out = tmp.join(out_name);
    let built = std::process::Command::new(python.with_file_name("componentize-py"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg("-d")
        .arg(wit)
        .args(["-w", "crm-adapter", "componentize", "-p"])
        .arg(dir)
        .arg("app")
        .arg("-o")
        .arg(&out)
        .output()
        .expect("componentize-py runs");
    assert!(built.status.success(), "componentize-py failed:\n{}", String::from_utf8_lossy(&built.stderr));
    Some(std::fs::read(&out).expect("the built component"))
}

/// Where tests keep what they build (virtualenvs, Python components, the shared component cache):
/// the target directory's `tmp`, as `CARGO_TARGET_TMPDIR` names it for test binaries (which run
/// from `<target>/<profile>/deps`); the system's temporary directory when that cannot be told.
pub fn target_tmp_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(|target| target.join("tmp")))
        .filter(|tmp| tmp.parent().is_some_and(|target| target.join("CACHEDIR.TAG").exists()))
        .unwrap_or_else(std::env::temp_dir)
}

/// The Pipedrive plugin (`plugins/pipedrive`, Python) built against the repository's contract,
/// once per test process; `None` where Python is missing and not required.
pub async fn pipedrive_plugin() -> Option<std::sync::Arc<Vec<u8>>> {
    static BUILT: tokio::sync::OnceCell<Option<std::sync::Arc<Vec<u8>>>> = tokio::sync::OnceCell::const_new();
    BUILT
        .get_or_init(|| async {
            tokio::task::spawn_blocking(|| {
                let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
                let tmp = target_tmp_dir();
                componentize(&tmp, &root.join("plugins").join("pipedrive"), &root.join("wit"), "pipedrive.wasm")
            })
            .await
            .expect("the build task ends")
            .map(std::sync::Arc::new)
        })
        .await
        .clone()
}
