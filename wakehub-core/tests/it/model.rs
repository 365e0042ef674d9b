//! The hosting rules, the cycle check and the queries, on small fixtures.

use wakehub_core::model::{Capability, Kind, ModelError, Topology};

use crate::support::{homelab, id, names, spec};

#[test]
fn hosting_rules_follow_the_seed() {
    let mut t = Topology::new();
    let m = t.add_node(spec("m", Kind::Physical, &[Capability::Proxmox]), None).unwrap();
    let pi = t.add_node(spec("pi", Kind::Physical, &[Capability::Docker]), None).unwrap();
    let vm = t.add_node(spec("vm", Kind::Vm, &[Capability::Docker]), Some(m)).unwrap();
    let c = t.add_node(spec("c", Kind::Container, &[]), Some(vm)).unwrap();
    t.add_node(spec("c2", Kind::Container, &[]), Some(pi)).unwrap();

    fn err<T: std::fmt::Debug>(r: Result<T, ModelError>) -> String {
        r.unwrap_err().to_string()
    }
    assert_eq!(
        err(t.add_node(spec("p2", Kind::Physical, &[]), Some(m))),
        "`p2` cannot run on `m`: a physical machine has no parent"
    );
    assert_eq!(
        err(t.add_node(spec("c3", Kind::Container, &[]), Some(m))),
        "`c3` cannot run on `m`: a container runs on a host that offers `docker`, and `m` does not"
    );
    assert_eq!(
        err(t.add_node(spec("v2", Kind::Vm, &[]), Some(pi))),
        "`v2` cannot run on `pi`: a vm runs on a host that offers `proxmox`, and `pi` does not"
    );
    assert_eq!(
        err(t.add_node(spec("v3", Kind::Lxc, &[]), None)),
        "`v3` cannot run on nothing: a lxc needs a parent that offers `proxmox`"
    );
    assert_eq!(
        err(t.add_node(spec("x", Kind::Plugin("plug".into()), &[]), Some(c))),
        "`x` cannot run on `c`: `c` is a container, and a container hosts nothing"
    );
    assert_eq!(
        err(t.add_node(spec("c4", Kind::Container, &[Capability::Docker]), Some(vm))),
        "`c4` is a container and cannot offer `docker`"
    );
    assert_eq!(
        err(t.add_node(spec("v4", Kind::Vm, &[Capability::Proxmox]), Some(m))),
        "`v4` is a vm and cannot offer `proxmox`"
    );
    assert_eq!(err(t.add_node(spec("vm", Kind::Physical, &[]), None)), "a node named `vm` already exists");
    assert_eq!(
        err(t.add_node(spec("Bad Name", Kind::Physical, &[]), None)),
        "invalid name: `Bad Name` must start with a lowercase letter or a digit"
    );
    assert_eq!(
        err(t.add_node(spec("a/b", Kind::Physical, &[]), None)),
        "invalid name: `a/b` contains `/`; use lowercase letters, digits, `-` and `_`"
    );

    // A host cannot drop a capability its children use, nor become a container.
    assert_eq!(
        err(t.update_node(vm, spec("vm", Kind::Vm, &[]))),
        "`c` cannot run on `vm`: a container runs on a host that offers `docker`, and `vm` does not"
    );
    assert_eq!(err(t.remove_node(vm)), "`vm` still hosts c; remove or move them first");
    // Renaming keeps the id and frees the old name.
    t.update_node(c, spec("c-renamed", Kind::Container, &[])).unwrap();
    assert_eq!(t.by_name("c-renamed").unwrap().id, c);
    assert!(t.by_name("c").is_none());
}

#[test]
fn links_that_close_a_cycle_are_refused_and_named() {
    let mut t = homelab();
    let (jelly, nas, sandbox, m1, m2, vmd) = (
        id(&t, "lxc-jellyfin"),
        id(&t, "nas"),
        id(&t, "sandbox"),
        id(&t, "machine1"),
        id(&t, "machine2"),
        id(&t, "vm-docker"),
    );
    let e = t.add_dependency(nas, sandbox).unwrap_err();
    assert_eq!(e.code().as_str(), "CYCLE");
    assert_eq!(e.to_string(), "this would close a cycle: nas → sandbox → lxc-jellyfin → nas");
    // Through the hosting tree: a machine may not depend on a container it hosts.
    let e = t.add_dependency(m1, sandbox).unwrap_err();
    assert_eq!(e.to_string(), "this would close a cycle: machine1 → sandbox → vm-docker → machine1");
    // …nor on something that needs, through a dependency, a guest it hosts.
    let e = t.add_dependency(m2, sandbox).unwrap_err();
    assert_eq!(e.to_string(), "this would close a cycle: machine2 → sandbox → lxc-jellyfin → machine2");
    // A link across the tree with no way back is fine (and removable).
    t.add_dependency(m2, vmd).unwrap();
    t.remove_dependency(m2, vmd).unwrap();
    assert_eq!(t.add_dependency(nas, nas).unwrap_err().to_string(), "`nas` cannot depend on itself");
    assert_eq!(t.add_dependency(jelly, nas).unwrap_err().code().as_str(), "CONFLICT");
    assert_eq!(t.remove_dependency(nas, jelly).unwrap_err().code().as_str(), "NOT_FOUND");
    // Nothing changed on refusal.
    assert_eq!(t.links().count(), 3);
}

#[test]
fn queries_on_the_reference_homelab() {
    let t = homelab();
    let n = |name| id(&t, name);
    assert_eq!(
        names(&t, t.upstream_closure(n("sandbox"))),
        ["lxc-jellyfin", "machine1", "machine2", "nas", "vm-docker"]
    );
    assert_eq!(names(&t, t.hosting_chain(n("sandbox"))), ["machine1", "vm-docker"]);
    let chain: Vec<String> = t.hosting_chain(n("paperless")).iter().map(|i| t.name_of(*i)).collect();
    assert_eq!(chain, ["machine1", "vm-docker"], "root first");
    assert_eq!(
        names(&t, t.hosted_descendants(n("machine1"))),
        ["paperless", "postgres", "sandbox", "vm-docker", "vm-ubuntu"]
    );
    assert_eq!(names(&t, t.dependents(n("nas"))), ["lxc-jellyfin"]);
    assert_eq!(names(&t, t.transitive_dependents(n("nas"))), ["lxc-jellyfin", "sandbox"]);
    assert_eq!(
        names(&t, t.downstream_closure(n("machine2"))),
        ["lxc-cloudflared", "lxc-jellyfin", "sandbox", "vm-homeassistant"]
    );
    // Who still uses machine2: running guests only.
    let running = |id| [n("lxc-cloudflared"), n("sandbox")].contains(&id);
    assert_eq!(names(&t, t.users(n("machine2"), running)), ["lxc-cloudflared"]);
    assert_eq!(names(&t, t.users(n("lxc-jellyfin"), running)), ["sandbox"]);
    assert!(t.users(n("nas"), running).is_empty());
    assert_eq!(t.resolve("nas").unwrap().id, n("nas"));
    assert_eq!(t.resolve(&n("nas").to_string()).unwrap().name(), "nas");
    assert_eq!(t.resolve("nope").unwrap_err().code().as_str(), "NOT_FOUND");
}

#[test]
fn kind_defaults_fit_reality() {
    let phys = Kind::Physical.default_timeouts();
    let cont = Kind::Container.default_timeouts();
    assert!(phys.start >= std::time::Duration::from_secs(180), "a physical boot takes minutes");
    assert!(cont.start <= std::time::Duration::from_secs(60));
    assert!(Kind::Physical.default_confirm_auto_shutdown());
    assert!(!Kind::Vm.default_confirm_auto_shutdown());
    assert!(!Kind::Container.default_confirm_auto_shutdown());
}
