"""A physical machine that really wakes up, for the end-to-end test.

Run inside the machine's own network namespace: `machine.py MAC SSHD_CONFIG MARKER [BOOT]`.
It listens for Wake-on-LAN packets on UDP port 9. A valid magic packet for MAC (six 0xFF
bytes, then the MAC sixteen times, optionally a SecureOn password) boots the machine: its
`sshd` starts with SSHD_CONFIG, so its SSH port starts answering, and BOOT (a shell command:
the machine's other services, such as its Docker Engine) with it. When MARKER appears (the
SSH shutdown wrapper creates it instead of running `shutdown`), the machine powers off:
`sshd` and its sessions are killed, BOOT is stopped (SIGTERM, as a shutdown would), the
ports go silent, and it waits for the next packet.
Every event is printed as one line: ready, packet valid|invalid, booted, powered off.
"""

import os
import signal
import socket
import subprocess
import sys
import time

mac = bytes.fromhex(sys.argv[1].replace(":", ""))
config, marker = sys.argv[2], sys.argv[3]
boot = sys.argv[4] if len(sys.argv) > 4 else None
sshd = None
services = None


def power_off():
    global sshd, services
    if services is not None:
        os.killpg(services.pid, signal.SIGTERM)
        try:
            services.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(services.pid, signal.SIGKILL)
            services.wait()
        services = None
    if sshd is not None:
        os.killpg(sshd.pid, signal.SIGTERM)
        sshd.wait()
        sshd = None


def terminate(*_):
    power_off()
    sys.exit(0)


signal.signal(signal.SIGTERM, terminate)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
sock.bind(("", 9))
sock.settimeout(0.05)
print("ready", flush=True)
while True:
    try:
        data, _ = sock.recvfrom(1024)
        valid = len(data) in (102, 106, 108) and data[:6] == b"\xff" * 6 and data[6:102] == mac * 16
        print("packet valid" if valid else "packet invalid", flush=True)
        if valid and sshd is None:
            log = open(config + ".log", "a")
            sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", config], stderr=log,
                                    start_new_session=True)
            if boot is not None:
                services = subprocess.Popen(["sh", "-c", boot], stdout=log, stderr=log, start_new_session=True)
            print("booted", flush=True)
    except socket.timeout:
        pass
    if sshd is not None and os.path.exists(marker):
        # A real shutdown takes a moment: the SSH session reports its exit status first.
        time.sleep(0.3)
        power_off()
        os.unlink(marker)
        print("powered off", flush=True)
