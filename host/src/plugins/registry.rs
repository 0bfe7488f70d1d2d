//! The plugin registry: slug → current [`LoadedPlugin`], bundled plugins overridden by files in the
//! plugins directory.
//!
//! Reads are lock-free (`ArcSwap`): a call takes the current `Arc` once and keeps it, so a reload
//! never disturbs calls in flight. Reloads are serialized by a mutex and build the whole new map
//! before swapping it in; a file that fails to load leaves what it provided before (or the bundled
//! plugin) serving, and its error stays visible in [`PluginRegistry::statuses`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::Mutex;

use super::loaded::{LoadedPlugin, PluginSource};
use super::loader::{PluginLoader, sha256_hex};
use crate::domain::PluginSlug;

/// A bundled plugin: its name and component bytes, embedded in the binary.
#[derive(Debug, Clone, Copy)]
pub struct BundledPlugin {
    /// A name for logs (the crate's).
    pub name: &'static str,
    /// The component.
    pub bytes: &'static [u8],
}

/// A failed load, kept for operators.
#[derive(Debug, Clone, Serialize)]
pub struct LoadFailure {
    /// What went wrong.
    pub error: String,
    /// The sha256 of the bytes that failed.
    pub sha256: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// What the registry knows about one file in the plugins directory.
#[derive(Debug, Clone)]
struct FileEntry {
    /// The plugin this file provides, from its last good load.
    plugin: Option<Arc<LoadedPlugin>>,
    /// The digest of the bytes last seen (loaded or failed), so unchanged files are skipped.
    sha256: String,
    /// The last load failure of this file, cleared by a successful load.
    failure: Option<LoadFailure>,
}

#[derive(Debug, Default)]
struct ReloadState {
    bundled: BTreeMap<PluginSlug, Arc<LoadedPlugin>>,
    bundled_failures: Vec<(String, LoadFailure)>,
    files: BTreeMap<PathBuf, FileEntry>,
}

/// What one reload changed.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ReloadReport {
    /// Files loaded (new or changed), as `slug@version from path`.
    pub loaded: Vec<String>,
    /// Files that failed, with the error.
    pub failed: Vec<FailedFile>,
    /// Files that disappeared.
    pub removed: Vec<String>,
    /// Files whose bytes had not changed.
    pub unchanged: usize,
}

/// A file that failed to load.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FailedFile {
    /// The file.
    pub path: String,
    /// Why.
    pub error: String,
}

impl ReloadReport {
    /// Whether anything changed.
    pub fn changed(&self) -> bool {
        !(self.loaded.is_empty() && self.failed.is_empty() && self.removed.is_empty())
    }
}

/// One row of the admin listing.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PluginStatus {
    /// The slug (absent for a file that never loaded).
    #[schema(value_type = Option<String>)]
    pub slug: Option<PluginSlug>,
    /// Display name.
    pub name: Option<String>,
    /// Version.
    pub version: Option<String>,
    /// `bundled` or the file path.
    pub source: String,
    /// sha256 of the serving component.
    pub sha256: Option<String>,
    /// When the serving version was loaded.
    pub loaded_at: Option<DateTime<Utc>>,
    /// Whether this row's plugin is the one serving its slug.
    pub active: bool,
    /// The latest load error of this source, if its newest bytes failed.
    #[schema(value_type = Option<Object>)]
    pub last_error: Option<LoadFailure>,
}

/// The registry.
pub struct PluginRegistry {
    loader: PluginLoader,
    bundled: Vec<BundledPlugin>,
    plugins_dir: Option<PathBuf>,
    active: ArcSwap<HashMap<PluginSlug, Arc<LoadedPlugin>>>,
    state: Mutex<ReloadState>,
}

impl std::fmt::Debug for PluginRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRegistry").field("plugins_dir", &self.plugins_dir).finish_non_exhaustive()
    }
}

fn is_candidate(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    // Editors and copy tools write temporaries beside the target; only `*.wasm` that is not hidden counts.
    path.extension().is_some_and(|e| e == "wasm") && !name.starts_with('.') && !name.starts_with('~')
}

/// Reads a file, retrying if it changed while being read (a copy still in progress).
async fn read_stable(path: &Path) -> std::io::Result<Vec<u8>> {
    let stamp = |m: std::fs::Metadata| (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH));
    for _ in 0..3 {
        let before = stamp(tokio::fs::metadata(path).await?);
        let bytes = tokio::fs::read(path).await?;
        let after = stamp(tokio::fs::metadata(path).await?);
        if before == after && bytes.len() as u64 == after.0 {
            return Ok(bytes);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err(std::io::Error::other("the file kept changing while it was read"))
}

impl PluginRegistry {
    /// An empty registry; call [`PluginRegistry::reload`] to load the bundled and file plugins.
    pub fn new(loader: PluginLoader, bundled: Vec<BundledPlugin>, plugins_dir: Option<PathBuf>) -> Self {
        Self {
            loader,
            bundled,
            plugins_dir,
            active: ArcSwap::from_pointee(HashMap::new()),
            state: Mutex::new(ReloadState::default()),
        }
    }

    /// The plugins directory watched, if any.
    pub fn plugins_dir(&self) -> Option<&Path> {
        self.plugins_dir.as_deref()
    }

    /// The loader (and through it the engine).
    pub fn loader(&self) -> &PluginLoader {
        &self.loader
    }

    /// The plugin serving `slug` now.
    pub fn get(&self, slug: &PluginSlug) -> Option<Arc<LoadedPlugin>> {
        self.active.load().get(slug).cloned()
    }

    /// Every serving plugin, by slug.
    pub fn all(&self) -> Vec<Arc<LoadedPlugin>> {
        let mut plugins: Vec<_> = self.active.load().values().cloned().collect();
        plugins.sort_by(|a, b| a.slug().cmp(b.slug()));
        plugins
    }

    /// Loads the bundled plugins (first time only) and rescans the plugins directory, then swaps
    /// in the new map. Serialized: concurrent callers wait their turn.
    pub async fn reload(&self) -> ReloadReport {
        let mut state = self.state.lock().await;
        let mut report = ReloadReport::default();

        if state.bundled.is_empty() && state.bundled_failures.is_empty() {
            for bundled in &self.bundled {
                match self.loader.load(Arc::from(bundled.bytes), PluginSource::Bundled).await {
                    Ok(plugin) => {
                        state.bundled.insert(plugin.slug().clone(), Arc::new(plugin));
                    }
                    Err(err) => {
                        // A bundled plugin that does not load is a build defect; say so loudly.
                        tracing::error!(plugin = bundled.name, error = %err, "bundled plugin failed to load");
                        let failure =
                            LoadFailure { error: err.to_string(), sha256: sha256_hex(bundled.bytes), at: Utc::now() };
                        state.bundled_failures.push((bundled.name.to_owned(), failure));
                    }
                }
            }
        }

        self.rescan_files(&mut state, &mut report).await;

        let mut map: HashMap<PluginSlug, Arc<LoadedPlugin>> =
            state.bundled.iter().map(|(s, p)| (s.clone(), p.clone())).collect();
        for entry in state.files.values() {
            if let Some(plugin) = &entry.plugin {
                map.insert(plugin.slug().clone(), plugin.clone());
            }
        }
        self.active.store(Arc::new(map));
        report
    }

    async fn rescan_files(&self, state: &mut ReloadState, report: &mut ReloadReport) {
        let Some(dir) = &self.plugins_dir else { return };
        let mut present = Vec::new();
        match tokio::fs::read_dir(dir).await {
            Ok(mut entries) => {
                while let Ok(Some(entry)) = entries.next_entry().await {
                    let path = entry.path();
                    if is_candidate(&path) && entry.file_type().await.is_ok_and(|t| t.is_file()) {
                        present.push(path);
                    }
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => tracing::warn!(dir = %dir.display(), error = %err, "cannot read the plugins directory"),
        }
        present.sort();

        let gone: Vec<PathBuf> = state.files.keys().filter(|p| !present.contains(p)).cloned().collect();
        for path in gone {
            state.files.remove(&path);
            tracing::info!(path = %path.display(), "plugin file removed");
            report.removed.push(path.display().to_string());
        }

        for path in present {
            let shown = path.display().to_string();
            let bytes = match read_stable(&path).await {
                Ok(bytes) => bytes,
                Err(err) => {
                    let failure =
                        LoadFailure { error: format!("could not read: {err}"), sha256: String::new(), at: Utc::now() };
                    Self::record_failure(state, &path, failure, report);
                    continue;
                }
            };
            let sha256 = sha256_hex(&bytes);
            if state.files.get(&path).is_some_and(|e| e.sha256 == sha256) {
                report.unchanged += 1;
                continue;
            }
            let outcome = match self.loader.load(Arc::from(bytes), PluginSource::File(path.clone())).await {
                Ok(plugin) => Self::check_slug(state, &path, &plugin).map(|()| plugin),
                Err(err) => Err(err.to_string()),
            };
            match outcome {
                Ok(plugin) => {
                    report.loaded.push(format!("{}@{} from {shown}", plugin.slug(), plugin.description().version));
                    state.files.insert(path, FileEntry { plugin: Some(Arc::new(plugin)), sha256, failure: None });
                }
                Err(error) => {
                    tracing::error!(path = %shown, %error, "plugin file rejected; the previous version keeps serving");
                    Self::record_failure(state, &path, LoadFailure { error, sha256, at: Utc::now() }, report);
                }
            }
        }
    }

    /// A file may not change the slug it provides, nor claim a slug another file provides.
    fn check_slug(state: &ReloadState, path: &Path, plugin: &LoadedPlugin) -> Result<(), String> {
        let slug = plugin.slug();
        if let Some(previous) = state.files.get(path).and_then(|e| e.plugin.as_ref())
            && previous.slug() != slug
        {
            return Err(format!(
                "this file provided `{}` and now says `{slug}`; a file cannot change its slug (add a new file instead)",
                previous.slug()
            ));
        }
        if let Some((other, _)) =
            state.files.iter().find(|(p, e)| p.as_path() != path && e.plugin.as_ref().is_some_and(|q| q.slug() == slug))
        {
            return Err(format!("slug `{slug}` is already provided by {}", other.display()));
        }
        Ok(())
    }

    fn record_failure(state: &mut ReloadState, path: &Path, failure: LoadFailure, report: &mut ReloadReport) {
        report.failed.push(FailedFile { path: path.display().to_string(), error: failure.error.clone() });
        let entry = state.files.entry(path.to_path_buf()).or_insert(FileEntry {
            plugin: None,
            sha256: String::new(),
            failure: None,
        });
        entry.sha256 = failure.sha256.clone();
        entry.failure = Some(failure);
    }

    /// The admin listing: every bundled plugin and every file, whether serving or not.
    pub async fn statuses(&self) -> Vec<PluginStatus> {
        let state = self.state.lock().await;
        let active = self.active.load();
        let row = |plugin: &Arc<LoadedPlugin>, failure: Option<LoadFailure>| PluginStatus {
            slug: Some(plugin.slug().clone()),
            name: Some(plugin.description().name.clone()),
            version: Some(plugin.description().version.clone()),
            source: plugin.source().to_string(),
            sha256: Some(plugin.sha256().to_owned()),
            loaded_at: Some(plugin.loaded_at()),
            active: active.get(plugin.slug()).is_some_and(|a| Arc::ptr_eq(a, plugin)),
            last_error: failure,
        };
        let mut rows: Vec<PluginStatus> = state.bundled.values().map(|p| row(p, None)).collect();
        for (name, failure) in &state.bundled_failures {
            rows.push(PluginStatus {
                slug: None,
                name: Some(name.clone()),
                version: None,
                source: "bundled".to_owned(),
                sha256: None,
                loaded_at: None,
                active: false,
                last_error: Some(failure.clone()),
            });
        }
        for (path, entry) in &state.files {
            match &entry.plugin {
                Some(plugin) => rows.push(row(plugin, entry.failure.clone())),
                None => rows.push(PluginStatus {
                    slug: None,
                    name: None,
                    version: None,
                    source: path.display().to_string(),
                    sha256: None,
                    loaded_at: None,
                    active: false,
                    last_error: entry.failure.clone(),
                }),
            }
        }
        rows
    }
}
