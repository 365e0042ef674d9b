//! What a `createNode`/`updateNode` input can be (any JSON): parsing it as an API client's
//! node never panics; a node that parses is checked by the connectors (its own table and
//! the endpoints it offers) and written through the store as API input, which accepts or
//! refuses it with a code — never panics, never stores a secret reference.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use wakehub_core::connector::Registry;
use wakehub_core::model::{ConfigValue, Origin, SecretRef};
use wakehub_core::secrets::MasterKey;
use wakehub_core::store::Store;
use wakehub_core::topology_file::{self, ParseOptions};

thread_local! {
    static LAB: RefCell<(Store, usize)> = RefCell::new((fresh(), 0));
    static REGISTRY: Registry = Registry::builtin();
}

fn fresh() -> Store {
    let store = Store::open_in_memory(MasterKey::generate()).expect("an in-memory store");
    let host = "[[node]]\nname = \"pve\"\nkind = \"physical\"\noffers = [\"proxmox\", \"docker\"]\n[node.connector]\ntype = \"sim\"\n";
    let t = topology_file::parse(host, &ParseOptions::operator()).expect("the host parses");
    store.import(&t, Origin::Operator).expect("the host imports");
    store
}

fn no_reference(v: &ConfigValue) -> bool {
    match v {
        ConfigValue::Secret(SecretRef::Env(_) | SecretRef::File(_)) => false,
        ConfigValue::Array(a) => a.iter().all(no_reference),
        ConfigValue::Table(t) => t.iter().all(|(k, v)| !k.starts_with('$') && no_reference(v)),
        _ => true,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let options = ParseOptions::default().with_plugin_kinds(["smart-plug".to_owned()].into());
    let Ok(draft) = topology_file::parse_node(&input, &options) else { return };
    assert!(draft.spec.connector.settings.values().all(no_reference), "API input parsed into a reference");
    let valid = REGISTRY.with(|r| r.validate_config(&draft.spec.connector).is_ok());
    if !valid {
        return;
    }
    LAB.with(|lab| {
        let mut lab = lab.borrow_mut();
        // A fresh store now and then keeps each run's work bounded.
        lab.1 += 1;
        if lab.1 % 5_000 == 0 {
            lab.0 = fresh();
        }
        let store = &lab.0;
        if let Ok(id) = store.create_node(draft, Origin::Api) {
            let t = store.topology().expect("the store reads back what it wrote");
            let node = t.get(id).expect("the new node is there");
            assert!(node.spec.connector.settings.values().all(no_reference));
            let _ = store.remove_node(id);
        }
    });
});
