//! Builds the connector plugins of `plugins/` (their own workspace) for `wasm32-wasip2`
//! once, the way wasmtime builds its test programs, and hands their directory to the
//! harness as `WAKEHUB_PLUGINS_DIR`. Every test and benchmark that needs a plugin uses
//! `wakehub_tests::plugins`, never its own build.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let plugins = manifest.join("../plugins");
    for watched in ["Cargo.toml", "Cargo.lock", "sdk", "redfish", "http-switch", "shelly", "test-plugins"] {
        println!("cargo::rerun-if-changed={}", plugins.join(watched).display());
    }
    println!("cargo::rerun-if-changed={}", manifest.join("../wit").display());
    // CI keeps the plugins' build beside its cached target dir (see .ci/run).
    println!("cargo::rerun-if-env-changed=WAKEHUB_PLUGINS_TARGET_DIR");
    let target_dir =
        std::env::var_os("WAKEHUB_PLUGINS_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| plugins.join("target"));

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--release", "--target", "wasm32-wasip2", "-j", "2", "--manifest-path"])
        .arg(plugins.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        // The outer build's settings are for the host target, not for the plugins.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_MAKEFLAGS")
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS");
    let out = build.output().expect("run cargo for the plugins");
    if !out.status.success() {
        panic!(
            "building plugins/ for wasm32-wasip2 failed (is the target installed? `rustup target add \
             wasm32-wasip2`; scripts/test.sh adds it):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dir = target_dir.join("wasm32-wasip2/release");
    assert!(Path::new(&dir).join("redfish.wasm").exists(), "no redfish.wasm in {}", dir.display());
    println!("cargo::rustc-env=WAKEHUB_PLUGINS_DIR={}", dir.display());
}
