//! The topology file: what a person writes, every error reported with its node and field,
//! and export writing the same format back.

use expect_test::expect;
use wakehub_core::model::{ConfigValue, Kind, Readiness, SecretRef};
use wakehub_core::topology_file::{self, ParseOptions};

use crate::support::{homelab, id, parse};

fn errors(text: &str) -> String {
    let e = topology_file::parse(text, &ParseOptions::operator()).expect_err("should be refused");
    e.errors.iter().map(|e| format!("{} [{}]\n", e, e.code)).collect()
}

#[test]
fn the_issue_example_parses_with_every_field() {
    let t = parse(
        r#"
[[node]]
name = "machine2"
kind = "physical"
offers = ["proxmox", "docker"]
confirm_auto_shutdown = false
stop_timeout = "2m"
[node.connector]
type = "wol-ssh"
mac = "aa:bb:cc:dd:ee:ff"
ssh_password = "env:M2_PASSWORD"

[[node]]
name = "lxc-jellyfin"
kind = "lxc"
parent = "machine2"
depends_on = ["nas"]
pinned = true
start_timeout = "60s"
readiness = { http = "http://10.0.0.21:8096/health", status = 200 }
[node.connector]
type = "proxmox"
vmid = 101

[[node]]
name = "nas"
kind = "physical"
readiness = { tcp = "10.0.0.5:445" }
[node.connector]
type = "wol-ssh"
password = "hunter2"
key = { private_key = "file:/etc/wakehub/nas.key", user = "root" }
"#,
    );
    let j = t.by_name("lxc-jellyfin").unwrap();
    assert_eq!(j.spec.kind, Kind::Lxc);
    assert!(j.spec.pinned);
    assert!(!j.spec.confirm_auto_shutdown);
    assert_eq!(j.spec.timeouts.start.as_secs(), 60);
    assert_eq!(j.spec.timeouts.stop, Kind::Lxc.default_timeouts().stop);
    assert_eq!(j.spec.readiness, Some(Readiness::Http { url: "http://10.0.0.21:8096/health".into(), status: 200 }));
    assert_eq!(j.spec.connector.type_name, "proxmox");
    assert_eq!(j.spec.connector.int("vmid"), Some(101));
    assert_eq!(t.parent(j.id), Some(id(&t, "machine2")));
    assert_eq!(t.dependencies(j.id), [id(&t, "nas")]);
    let m2 = t.by_name("machine2").unwrap();
    assert!(!m2.spec.confirm_auto_shutdown);
    assert_eq!(m2.spec.timeouts.stop.as_secs(), 120);
    assert_eq!(m2.spec.connector.settings["ssh_password"], ConfigValue::Secret(SecretRef::Env("M2_PASSWORD".into())));
    let nas = t.by_name("nas").unwrap();
    assert!(nas.spec.confirm_auto_shutdown, "default on for physical machines");
    assert_eq!(nas.spec.readiness, Some(Readiness::Tcp { host: "10.0.0.5".into(), port: 445 }));
    assert_eq!(nas.spec.connector.settings["password"], ConfigValue::Secret(SecretRef::Inline("hunter2".into())));
    assert!(!format!("{:?}", nas.spec).contains("hunter2"), "Debug never shows an inline secret");
    let ConfigValue::Table(key) = &nas.spec.connector.settings["key"] else { panic!("nested table") };
    assert_eq!(key["private_key"], ConfigValue::Secret(SecretRef::File("/etc/wakehub/nas.key".into())));
}

#[test]
fn every_problem_is_reported_at_once_with_node_and_field() {
    let got = errors(
        r#"
title = "lab"

[[node]]
name = "Machine 1"
kind = "physical"
colour = "red"
[node.connector]
type = "sim"

[[node]]
name = "vm1"
kind = "vm"
parent = "ghost"
[node.connector]
type = "sim"

[[node]]
name = "c1"
kind = "contianer"
pinned = "yes"
start_timeout = "soon"
stop_timeout = "0s"
offers = ["ftp"]
depends_on = "nas"
readiness = { tcp = "nohost", http = "x" }
url = "https://admin:hunter2@c1.lab"
[node.connector]
type = ""
password = 42

[[node]]
kind = "physical"

[[node]]
name = "nas"
kind = "physical"
readiness = { http = "ftp://nas", status = 999 }
url = "javascript:alert(1)"
[node.connector]
type = "sim"
token = "env:"

[[node]]
name = "nas"
kind = "physical"
[node.connector]
type = "sim"
"#,
    );
    expect![[r#"
        field `title`: unknown top-level key (expected `[[node]]` entries) [VALIDATION]
        node `Machine 1`, field `name`: `Machine 1` must start with a lowercase letter or a digit [VALIDATION]
        node `Machine 1`, field `colour`: unknown field (expected one of: name, kind, parent, depends_on, pinned, confirm_auto_shutdown, stop_when_empty, start_timeout, stop_timeout, readiness, offers, tags, url, idle, proxy, watts, connector) [VALIDATION]
        node `c1`, field `kind`: unknown kind `contianer` (expected one of: physical, vm, lxc, container, stack) [VALIDATION]
        node `c1`, field `depends_on`: must be a list of node names [VALIDATION]
        node `c1`, field `pinned`: must be true or false [VALIDATION]
        node `c1`, field `url`: must not carry a user name or password (every viewer of the node sees it) [VALIDATION]
        node `c1`, field `start_timeout`: `soon` is not a duration such as "90s" or "5m" (expected number at 0) [VALIDATION]
        node `c1`, field `stop_timeout`: must be longer than zero [VALIDATION]
        node `c1`, field `readiness`: give either `tcp` or `http`, not both [VALIDATION]
        node `c1`, field `offers`: unknown capability "ftp" (expected proxmox, docker) [VALIDATION]
        node `c1`, field `connector.type`: must be a non-empty string such as "sim" or "proxmox" [VALIDATION]
        node `c1`, field `connector.password`: a secret must be a string (inline, "env:VAR" or "file:PATH") [VALIDATION]
        node `node #4`, field `name`: missing (every node needs a unique name) [VALIDATION]
        node `node #4`, field `connector`: missing (a `[node.connector]` table with a `type`) [VALIDATION]
        node `nas`, field `url`: `javascript:alert(1)` must be an http:// or https:// address with a host [VALIDATION]
        node `nas`, field `readiness.status`: must be an HTTP status code (100-599) [VALIDATION]
        node `nas`, field `connector.token`: `env:` needs a variable name [VALIDATION]
        node `vm1`, field `parent`: unknown node `ghost` [VALIDATION]
    "#]]
    .assert_eq(&got);
}

#[test]
fn model_rules_surface_as_field_errors() {
    let got = errors(
        r#"
[[node]]
name = "a"
kind = "physical"
depends_on = ["b", "a", "zz"]
[node.connector]
type = "sim"

[[node]]
name = "b"
kind = "physical"
depends_on = ["c"]
[node.connector]
type = "sim"

[[node]]
name = "c"
kind = "physical"
offers = ["docker"]
depends_on = ["a"]
[node.connector]
type = "sim"

[[node]]
name = "ct"
kind = "container"
parent = "c"
offers = ["docker"]
[node.connector]
type = "sim"

[[node]]
name = "vm"
kind = "vm"
parent = "c"
[node.connector]
type = "sim"

[[node]]
name = "h1"
kind = "physical"
parent = "c"
[node.connector]
type = "sim"

[[node]]
name = "dup"
kind = "physical"
[node.connector]
type = "sim"

[[node]]
name = "dup"
kind = "physical"
[node.connector]
type = "sim"
"#,
    );
    expect![[r#"
        node `dup`, field `name`: another node already has this name [VALIDATION]
        node `ct`, field `offers`: `ct` is a container and cannot offer `docker` [VALIDATION]
        node `vm`, field `parent`: `vm` cannot run on `c`: a vm runs on a host that offers `proxmox`, and `c` does not [VALIDATION]
        node `h1`, field `parent`: `h1` cannot run on `c`: a physical machine has no parent [VALIDATION]
        node `a`, field `depends_on`: `a` cannot depend on itself [VALIDATION]
        node `a`, field `depends_on`: unknown node `zz` [VALIDATION]
        node `c`, field `depends_on`: this would close a cycle: c → a → b → c [CYCLE]
    "#]]
    .assert_eq(&got);
}

#[test]
fn malformed_toml_is_one_clear_error() {
    let got = errors("[[node]\nname = ");
    assert!(got.starts_with("not valid TOML: "), "{got}");
    assert!(got.contains("line 1"), "{got}");
    assert!(errors("node = 3").contains("`node` must be an array of tables"));
    assert!(
        errors("[[node]]\nname='x'\nkind='physical'\nconnector = 'sim'").contains("field `connector`: must be a table")
    );
}

#[test]
fn export_round_trips() {
    let original = homelab();
    let text = topology_file::export(&original).unwrap();
    let again = parse(&text);
    assert_eq!(topology_file::export(&again).unwrap(), text, "export is a fixed point");
    for node in original.nodes() {
        let other = again.by_name(node.name()).unwrap();
        assert_eq!(other.spec, node.spec, "{}", node.name());
        assert_eq!(other.parent.map(|p| again.name_of(p)), node.parent.map(|p| original.name_of(p)));
        let deps = |t: &wakehub_core::model::Topology, id| {
            let mut v: Vec<String> = t.dependencies(id).iter().map(|d| t.name_of(*d)).collect();
            v.sort();
            v
        };
        assert_eq!(deps(&again, other.id), deps(&original, node.id));
    }
    // Hosts come before what they host, and defaults are not repeated.
    assert!(text.find("name = \"machine1\"").unwrap() < text.find("name = \"vm-docker\"").unwrap());
    assert!(!text.contains("confirm_auto_shutdown"));
}

#[test]
fn export_never_writes_a_plaintext_secret() {
    let t = parse("[[node]]\nname='nas'\nkind='physical'\n[node.connector]\ntype='sim'\npassword='hunter2'\n");
    let e = topology_file::export(&t).unwrap_err();
    assert_eq!(e.to_string(), "node `nas`: `connector.password` is a plaintext secret; it is never exported");
    let t = parse("[[node]]\nname='nas'\nkind='physical'\n[node.connector]\ntype='sim'\npassword='env:NAS_PW'\n");
    assert!(topology_file::export(&t).unwrap().contains("password = \"env:NAS_PW\""));
}

#[test]
fn plugin_kinds_are_accepted_only_when_declared() {
    let text = "[[node]]\nname='bmc'\nkind='redfish-server'\n[node.connector]\ntype='plugin:redfish'\n";
    assert!(errors(text).contains("unknown kind `redfish-server`"));
    let options = ParseOptions::operator().with_plugin_kinds(["redfish-server".to_owned()].into());
    let t = topology_file::parse(text, &options).unwrap();
    assert_eq!(t.by_name("bmc").unwrap().spec.kind, Kind::Plugin("redfish-server".into()));
}

mod mutations {
    //! The fuzz target's property, run in the normal suite on random edits of the homelab
    //! file (the cargo-fuzz target in `fuzz/` explores further).
    use proptest::prelude::*;
    use wakehub_core::topology_file::{self, ParseOptions};

    const HOMELAB: &str = include_str!("../../../examples/homelab.toml");

    fn edited() -> impl Strategy<Value = String> {
        let edits = proptest::collection::vec((0usize..HOMELAB.len(), 0usize..40, "[ -~\n]{0,12}"), 1..6);
        edits.prop_map(|edits| {
            let mut text = HOMELAB.to_owned();
            for (at, len, insert) in edits {
                let mut start = at.min(text.len());
                while !text.is_char_boundary(start) {
                    start -= 1;
                }
                let mut end = (start + len).min(text.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.replace_range(start..end, &insert);
            }
            text
        })
    }

    proptest! {
        #[test]
        fn edited_files_parse_or_fail_cleanly(text in edited()) {
            match topology_file::parse(&text, &ParseOptions::operator()) {
                Ok(t) => {
                    if let Ok(out) = topology_file::export(&t) {
                        let again = topology_file::parse(&out, &ParseOptions::operator());
                        prop_assert!(again.is_ok(), "export does not parse back:\n{}", out);
                        prop_assert_eq!(topology_file::export(&again.unwrap()).ok(), Some(out));
                    }
                }
                Err(e) => prop_assert!(!e.errors.is_empty()),
            }
        }
    }
}
