//! The physical-machine connector: magic packets checked byte for byte on a UDP listener
//! (and against Debian's `wakeonlan`), and shutdowns through a private OpenSSH server whose
//! `ForceCommand` wrapper acknowledges `shutdown` instead of running it.

use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use wakehub_core::events::CascadeStatus;
use wakehub_core::model::Action;

const MAC: &str = "52:54:00:12:34:56";

use wakehub_tests::{PASSWORD, Sshd, USER, free_port};

use crate::lab::{engine_with_builtins as engine, run_to_end as run};

fn machine(extra: &str) -> String {
    format!(
        "[[node]]\nname = \"nas\"\nkind = \"physical\"\nstart_timeout = \"20s\"\nstop_timeout = \"20s\"\n[node.connector]\ntype = \"wol-ssh\"\nmac = \"{MAC}\"\nhost = \"127.0.0.1\"\n{extra}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_magic_packet_wakes_the_machine() {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let wol_port = udp.local_addr().unwrap().port();
    let probe_port = free_port();
    // The "machine": it boots (its port answers) once a valid packet for its MAC arrives.
    let booted = std::thread::spawn(move || {
        let mut buf = [0u8; 200];
        loop {
            let (n, _) = udp.recv_from(&mut buf).unwrap();
            let mac: Vec<u8> = MAC.split(':').map(|h| u8::from_str_radix(h, 16).unwrap()).collect();
            let valid = n == 108
                && buf[..6] == [0xff; 6]
                && buf[6..102].chunks(6).all(|c| c == mac)
                && buf[102..108] == [1, 2, 3, 4, 5, 6];
            if valid {
                return (TcpListener::bind(("127.0.0.1", probe_port)).unwrap(), udp, buf[..n].to_vec());
            }
        }
    });
    let e = engine(&machine(&format!(
        "broadcast = \"127.0.0.1\"\nwol_port = {wol_port}\nprobe_port = {probe_port}\nsecureon_password = \"01:02:03:04:05:06\"\nssh_password = \"x\"\n"
    )));
    let r = run(&e, "nas", Action::Start).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    let (_machine, udp, ours) = booted.join().unwrap();

    // Same bytes as Debian's reference sender (without the SecureOn suffix).
    let out = Command::new("wakeonlan").args(["-i", "127.0.0.1", "-p", &wol_port.to_string(), MAC]).output();
    let out = out.expect("wakeonlan is missing: `apt-get install -y wakeonlan` (scripts/test.sh does it)");
    assert!(out.status.success());
    let mut buf = [0u8; 200];
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Skip the rest of our own repeats (108 bytes each) to Debian's packet (102 bytes).
    let n = loop {
        let (n, _) = udp.recv_from(&mut buf).unwrap();
        if n == 102 {
            break n;
        }
        assert_eq!(&buf[..n], &ours[..], "every repeat is the same packet");
    };
    assert_eq!(&buf[..n], &ours[..102]);
}

/// A machine whose port answers until the SSH wrapper records a shutdown request.
fn machine_until_shutdown(probe_port: u16, marker: PathBuf) -> std::thread::JoinHandle<()> {
    let _ = std::fs::remove_file(&marker);
    let up = TcpListener::bind(("127.0.0.1", probe_port)).unwrap();
    std::thread::spawn(move || {
        while !marker.exists() {
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(up);
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_shuts_down_with_a_learned_and_pinned_host_key() {
    let mut sshd = Sshd::start();
    let probe_port = free_port();
    let went_down = machine_until_shutdown(probe_port, sshd.out("shutdown-requested"));
    let ssh_port = sshd.port;
    let node = |password: &str| {
        machine(&format!(
            "ssh_port = {ssh_port}\nssh_user = \"{USER}\"\nssh_password = \"{password}\"\nprobe_port = {probe_port}\n"
        ))
    };
    let e = engine(&node(PASSWORD));
    let r = run(&e, "nas", Action::Stop).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    went_down.join().unwrap();
    let commands = std::fs::read_to_string(sshd.out("commands.log")).unwrap();
    assert_eq!(commands.trim(), "sudo -n shutdown -h now", "a non-root user gets sudo");

    // Wrong password.
    let _up = TcpListener::bind(("127.0.0.1", probe_port)).unwrap();
    let r = run(&engine(&node("wrong")), "nas", Action::Stop).await;
    assert_eq!(r.error_code.map(|c| c.as_str()), Some("AUTH_FAILED"), "{r:?}");
    assert!(!r.error_message.as_deref().unwrap().contains("wrong"), "no secret in messages");

    // The key learned on first contact is pinned: a new host key is refused.
    sshd.stop_daemon();
    sshd.new_host_key();
    sshd.spawn();
    let r = run(&e, "nas", Action::Stop).await;
    assert_eq!(r.error_code.map(|c| c.as_str()), Some("HOST_KEY_MISMATCH"), "{r:?}");
    // A key pinned in the file works the same way.
    let pinned = std::fs::read_to_string(sshd.host_key_file()).unwrap();
    let pinned_node = format!("{}ssh_host_key = \"{}\"\n", node(PASSWORD), pinned.trim());
    drop(_up);
    let went_down = machine_until_shutdown(probe_port, sshd.out("shutdown-requested"));
    let r = run(&engine(&pinned_node), "nas", Action::Stop).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    went_down.join().unwrap();

    // Nothing listens on the SSH port: unreachable.
    sshd.stop_daemon();
    let _up = TcpListener::bind(("127.0.0.1", probe_port));
    let r = run(&engine(&node(PASSWORD)), "nas", Action::Stop).await;
    assert_eq!(r.error_code.map(|c| c.as_str()), Some("UNREACHABLE"), "{r:?}");
}
