//! A compose file never makes the parser panic: it reads, or it says why not. What reads has
//! a start order holding every service once, and reading its canonical form's meaning again
//! gives the same digest; its rendering as a compose file reads back to the same model.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wakehub_core::stack::{Compose, parse_compose, render};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(compose) = parse_compose(&text) {
        let order = compose.start_order();
        assert_eq!(order.len(), compose.services.len());
        let back: Compose = serde_json::from_str(&compose.canonical()).expect("the canonical form reads back");
        assert_eq!(back.digest(), compose.digest());
        let rendered = render(&compose);
        assert_eq!(parse_compose(&rendered).as_ref(), Ok(&compose), "{rendered}");
    }
});
