//! The web dashboard is embedded from `web/dist` (see `src/web.rs`): a file added to or
//! removed from it must rebuild the crate, which the embedded files alone do not tell cargo.

fn main() {
    println!("cargo:rerun-if-changed=web/dist");
    println!("cargo:rerun-if-changed=web/dist/assets");
}
