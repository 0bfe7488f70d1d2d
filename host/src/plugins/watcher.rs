//! Watches the plugins directory and reloads the registry after changes settle.
//!
//! File events arrive in bursts (a copy is create + several writes + close; a rename is two
//! events). Every event restarts a short quiet period; the reload runs once the directory has been
//! quiet that long, and the registry itself refuses files that are still changing.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::registry::{PluginRegistry, ReloadReport};

/// How long the directory must be quiet before a reload.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Called after every reload the watcher triggers (for the audit log).
pub type ReloadHook = Arc<dyn Fn(&ReloadReport) + Send + Sync>;

/// A running watcher; dropping it stops watching.
pub struct PluginWatcher {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for PluginWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PluginWatcher")
    }
}

impl Drop for PluginWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn relevant(event: &notify::Event) -> bool {
    use notify::EventKind;
    matches!(event.kind, EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) | EventKind::Any)
        && event.paths.iter().any(|p| p.extension().is_some_and(|e| e == "wasm"))
}

impl PluginWatcher {
    /// Starts watching `dir` (which must exist) and reloading `registry` on changes.
    pub fn start(dir: &Path, registry: Arc<PluginRegistry>, on_reload: Option<ReloadHook>) -> notify::Result<Self> {
        let (tx, mut rx) = mpsc::unbounded_channel::<()>();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) if relevant(&event) => {
                let _ = tx.send(());
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "plugin directory watch error"),
        })?;
        watcher.watch(dir, RecursiveMode::NonRecursive)?;

        let task = tokio::spawn(async move {
            while rx.recv().await.is_some() {
                // Quiet period: keep absorbing events until none arrives for DEBOUNCE.
                loop {
                    match tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                        Ok(Some(())) => continue,
                        Ok(None) => return,
                        Err(_quiet) => break,
                    }
                }
                let report = registry.reload().await;
                if report.changed() {
                    tracing::info!(loaded = ?report.loaded, failed = report.failed.len(), removed = ?report.removed, "plugins reloaded");
                    if let Some(hook) = &on_reload {
                        hook(&report);
                    }
                }
            }
        });
        tracing::info!(dir = %dir.display(), "watching the plugins directory");
        Ok(Self { _watcher: watcher, task })
    }
}
