//! A machine's answer to the probe never makes the parser panic: it reads, or it says why
//! not. What reads serializes to JSON and back to the same snapshot (what the store keeps).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wakehub_core::machine::{Snapshot, parse};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(snapshot) = parse(&text) {
        let json = serde_json::to_string(&snapshot).expect("a snapshot serializes");
        let back: Snapshot = serde_json::from_str(&json).expect("a snapshot reads back");
        assert_eq!(serde_json::to_string(&back).ok(), Some(json));
    }
});
