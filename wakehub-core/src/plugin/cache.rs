//! The on-disk compilation cache of the plugin host: what it compiled (a manifest of
//! SHA-256 sums the server keeps in its database), and the check that deletes anything in
//! the directory it did not compile before a host uses it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::Digest;

use super::PluginHost;

impl PluginHost {
    /// The SHA-256 of every compiled component of a compilation cache directory (by path
    /// relative to it): what this host compiled, to be kept where the cache cannot be
    /// rewritten (the server keeps it in its database) and checked with
    /// [`verify_cache`](Self::verify_cache). wasmtime's own bookkeeping files (usage
    /// statistics, in-progress writes, locks), which its background worker writes and removes
    /// at any time and which hold no code, are not listed.
    pub fn cache_manifest(dir: &Path) -> std::io::Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for (rel, path) in cache_files(dir)? {
            if is_cache_bookkeeping(&path) {
                continue;
            }
            // Removed by wasmtime's cleanup between the listing and now: not in the cache.
            let bytes = match std::fs::read(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                bytes => bytes?,
            };
            let hex: String = sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
            out.insert(rel, hex);
        }
        Ok(out)
    }

    /// Deletes every file of the cache directory `dir` that could be loaded as compiled code
    /// and is not in `known` with the same SHA-256 (a compiled component this host did not
    /// produce is never loaded: it is compiled again); returns what was deleted. Call it
    /// before a host uses the directory.
    pub fn verify_cache(dir: &Path, known: &BTreeMap<String, String>) -> std::io::Result<Vec<PathBuf>> {
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let mut removed = Vec::new();
        for (rel, sum) in Self::cache_manifest(dir)? {
            if known.get(&rel) != Some(&sum) {
                let path = dir.join(&rel);
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    r => r?,
                }
                removed.push(path);
            }
        }
        Ok(removed)
    }
}

/// Every file under a cache directory, with its path relative to it (a directory removed
/// while it is walked is skipped).
fn cache_files(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && d != dir => continue,
            entries => entries?,
        };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(dir) {
                out.push((rel.to_string_lossy().into_owned(), path.clone()));
            }
        }
    }
    Ok(out)
}

/// A file wasmtime's cache worker keeps beside the compiled components: `*.stats` (usage
/// counts), `*.wip-*` (a write in progress, or a task's lock) and the `.cleanup` marker.
/// wasmtime never loads one as code.
fn is_cache_bookkeeping(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    path.extension().is_some_and(|x| x == "stats" || x.to_string_lossy().starts_with("wip-")) || name == ".cleanup"
}
