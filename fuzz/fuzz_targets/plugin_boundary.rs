//! What a connector plugin can return from `discover` (any strings for key, name, kind,
//! configuration and details, any status): the host's conversion never panics, and what
//! it stores under the plugin's host never holds a secret, a reference, a grant (hosts,
//! URLs, ports, pins, `allow_hosts`), a command or a `$`-key.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use wakehub_core::connector::{DiscoveredGuest, GuestReport};
use wakehub_core::model::{
    ConfigValue, ConnectorConfig, Kind, NodeId, NodeSpec, PowerState, is_command_key, is_endpoint_key,
    is_secret_key,
};
use wakehub_core::secrets::MasterKey;
use wakehub_core::store::Store;

thread_local! {
    static LAB: RefCell<(Store, NodeId, usize)> = RefCell::new(fresh());
}

fn fresh() -> (Store, NodeId, usize) {
    let store = Store::open_in_memory(MasterKey::generate()).expect("an in-memory store");
    let spec = NodeSpec::new("warren", Kind::Plugin("gremlin".into()), ConnectorConfig::new("plugin:hostile"));
    let host = store.add_node(spec, None).expect("the host");
    (store, host, 0)
}

fn clean(key: &str, v: &ConfigValue) -> bool {
    !key.starts_with('$')
        && match v {
            ConfigValue::Secret(_) => false,
            ConfigValue::Array(a) => a.iter().all(|i| clean("", i)),
            ConfigValue::Table(t) => t.iter().all(|(k, v)| clean(k, v)),
            _ => true,
        }
}

fuzz_target!(|data: &[u8]| {
    let (status, rest) = data.split_first().unwrap_or((&0, &[]));
    let mut parts = rest.split(|b| *b == 0xff).map(|p| String::from_utf8_lossy(p).into_owned());
    let mut next = || parts.next().unwrap_or_default();
    let report = GuestReport {
        key: next(),
        name: next(),
        kind: next(),
        config: next(),
        status: PowerState::ALL[usize::from(*status) % PowerState::ALL.len()],
        details: next(),
    };
    let kinds: wakehub_core::model::PluginKinds = ["gremlin".to_owned()].into();
    let Ok(guest) = DiscoveredGuest::from_report("plugin:hostile", &kinds, report) else { return };
    for (k, v) in &guest.connector.settings {
        assert!(!(is_secret_key(k) || is_endpoint_key(k) || is_command_key(k)), "`{k}` kept");
        assert!(clean(k, v), "`{k}` holds a secret or a `$`-key");
    }
    LAB.with(|lab| {
        let mut lab = lab.borrow_mut();
        lab.2 += 1;
        if lab.2 % 5_000 == 0 {
            *lab = fresh();
        }
        let (store, host) = (&lab.0, lab.1);
        if store.apply_discovery(host, "plugin:hostile", &[guest]).is_ok() {
            let t = store.topology().expect("the store reads back what it wrote");
            for node in t.nodes().filter(|n| n.parent == Some(host)) {
                assert!(node.spec.connector.settings.iter().all(|(k, v)| clean(k, v)));
            }
        }
    });
});
