//! Topology-file import never panics: any input either parses, or returns errors. What
//! parses and holds no plaintext secret exports and parses back to the same export.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wakehub_core::topology_file::{self, ParseOptions};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let options = ParseOptions::operator().with_plugin_kinds(["smart-plug".to_owned()].into());
    match topology_file::parse(text, &options) {
        Ok(topology) => {
            if let Ok(exported) = topology_file::export(&topology) {
                let again = topology_file::parse(&exported, &options).expect("an export parses");
                assert_eq!(topology_file::export(&again).ok(), Some(exported), "export is a fixed point");
            }
        }
        Err(e) => assert!(!e.errors.is_empty(), "an error names at least one problem"),
    }
});
