//! The connector plugins of `plugins/` (and the test plugins of `plugins/test-plugins/`),
//! built once for `wasm32-wasip2` by this crate's build script.

use std::path::Path;

/// Where the built components are (`redfish.wasm`, `http_switch.wasm`, `hostile.wasm`…).
pub const DIR: &str = env!("WAKEHUB_PLUGINS_DIR");

/// [`DIR`] as a path.
pub fn dir() -> &'static Path {
    Path::new(DIR)
}

/// The built component of plugin `name` (`http-switch` is `http_switch.wasm`: libraries are
/// named with `_`, binaries keep their `-`).
pub fn file(name: &str) -> std::path::PathBuf {
    [name.replace('-', "_"), name.to_owned()]
        .map(|n| dir().join(format!("{n}.wasm")))
        .into_iter()
        .find(|f| f.exists())
        .unwrap_or_else(|| panic!("no {name}.wasm in {DIR}"))
}

/// A fresh directory holding copies of the named plugins (what `serve --plugins` loads).
pub fn copy(names: &[&str]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    for name in names {
        let from = file(name);
        let to = tmp.path().join(from.file_name().unwrap_or_default());
        std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    }
    tmp
}
