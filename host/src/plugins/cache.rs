//! The on-disk cache of compiled components: compiling with Cranelift takes ~100 ms per plugin,
//! loading a cached artifact well under a millisecond.
//!
//! Keyed by the sha256 of the component bytes and a hash of everything that makes native code
//! compatible (wasmtime version, compiler settings). Only files this host wrote are ever
//! deserialized: the cache lives in the data directory, never in the plugins directory, and files
//! are written 0600 through a temporary file and an atomic rename.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// Whether a component came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded a cached artifact.
    Hit,
    /// Compiled (and cached, when a directory is configured).
    Compiled,
}

/// The compiled-component cache; `None` directory disables it.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: Option<PathBuf>,
}

impl ComponentCache {
    /// A cache in `dir` (created on first write), or none.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    fn key(engine: &Engine, sha256_hex: &str) -> String {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        format!("{sha256_hex}-{:016x}", hasher.finish())
    }

    /// Loads `bytes` (whose sha256 is given) from the cache or compiles it. Blocking: call it
    /// from a blocking thread.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        sha256_hex: &str,
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let Some(dir) = &self.dir else {
            return Ok((Component::new(engine, bytes)?, CacheOutcome::Compiled));
        };
        let path = dir.join(format!("{}.cwasm", Self::key(engine, sha256_hex)));
        if path.is_file() {
            match deserialize(engine, &path) {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(err) => {
                    tracing::warn!(path = %path.display(), error = %err, "discarding unreadable cached component");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(err) = write_atomically(dir, &path, &component.serialize()?) {
            // The cache is an optimisation: a read-only data directory must not stop plugins loading.
            tracing::warn!(path = %path.display(), error = %err, "could not write the component cache");
        }
        Ok((component, CacheOutcome::Compiled))
    }
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `deserialize_file` trusts the file to be native code wasmtime produced. Only this
    // host writes into the cache directory (0700, files 0600, inside the operator's data
    // directory), under a name derived from the content hash and the engine's compatibility
    // hash; artifacts of another wasmtime version are rejected by wasmtime's own header check.
    unsafe { Component::deserialize_file(engine, path) }
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    create_private_dir(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    set_private(tmp.path(), 0o600)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    set_private(dir, 0o700)
}

#[cfg(unix)]
fn set_private(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_private(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}
