//! Labs for the tests against real peers: an engine over a fresh store holding a topology
//! file, and running one cascade to its end.

/// An engine with the built-in connectors over a fresh in-memory store holding `text`
/// (whose connector keys must validate).
pub fn engine_with_builtins(text: &str) -> wakehub_core::engine::Engine {
    use wakehub_core::connector::Registry;
    let store = wakehub_core::store::Store::open_in_memory(wakehub_core::secrets::MasterKey::generate()).unwrap();
    let topology = crate::support::parse(text);
    let problems = Registry::builtin().validate(&topology);
    assert!(problems.is_empty(), "{problems:?}");
    store.import(&topology, wakehub_core::model::Origin::Operator).unwrap();
    wakehub_core::engine::Engine::new(store, Registry::builtin(), wakehub_core::engine::EngineConfig::default())
        .unwrap()
}

/// Requests `action` on the node named `name` and waits (at most a minute) for the end.
pub async fn run_to_end(
    engine: &wakehub_core::engine::Engine,
    name: &str,
    action: wakehub_core::model::Action,
) -> wakehub_core::store::CascadeRecord {
    let id = engine.store().topology().unwrap().by_name(name).unwrap().id;
    let record = engine.request(id, action).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(60), engine.wait(record.id))
        .await
        .expect("cascade ends")
        .unwrap()
}
