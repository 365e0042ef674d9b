"""Starts fakepve (the PyPI Proxmox VE API emulator) for the connector tests.

Usage: pve.py DIR (a module named `fakepve.py` would shadow the package). Listens on 127.0.0.1 on a free port with a fresh self-signed
certificate written to DIR, user root@pam / secret, an API token root@pam!ci, and guests:
VM 100 `vm-docker` and LXC 101 `lxc-jellyfin` (stopped), VM 102 `broken` whose start task
fails, LXC 104 `Media-Server` (tagged, not in the tests' topologies: discovery finds it) and
template VM 9000 (never discovered). A second PVE node `pve2` stands for a Proxmox host that
shuts down through the API: `node_port` is a TCP port open while `pve2` is online, closed
when `POST /nodes/pve2/status command=shutdown` arrives (as its SSH port would go away).
Tickets live FAKEPVE_TICKET_TTL seconds (default 7200, as on real PVE). Prints one JSON
line: {"url", "fingerprint", "token_id", "token_secret", "node_port", "cert"}.
"""

import asyncio
import hashlib
import json
import os
import sys

from fakepve.certs import make_cert
from fakepve.server import FakePve

TOKEN_ID, TOKEN_SECRET = "root@pam!ci", "5f0d6f0e-8a8e-4a8e-9d55-0c1c7d1f2b3a"


async def main(directory):
    pve = FakePve(user="root@pam", password="secret", host="127.0.0.1", port=0)
    pve.apitokens[TOKEN_ID] = TOKEN_SECRET
    for vm in (pve.add_vm(100, "vm-docker"), pve.add_vm(102, "broken")):
        vm.start_secs = 1
        vm.shutdown_secs = 1
    pve.vm(102).start_error = "start failed: QEMU exited with code 1"
    ct = pve.add_ct(101, "lxc-jellyfin")
    ct.start_secs = 1
    ct.shutdown_secs = 1
    media = pve.add_ct(104, "Media-Server")
    media.config["tags"] = "media;nas"
    media.start_secs = 1
    media.shutdown_secs = 1
    pve.add_vm(9000, "debian-template", template=True)
    pve.ticket_ttl = float(os.environ.get("FAKEPVE_TICKET_TTL", "7200"))

    # pve2: a host whose "SSH port" is open while it is online.
    pve.add_node("pve2")
    node_port = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    generic = pve.synthesise

    async def synthesise(match, method, info, user, values):
        data = await generic(match, method, info, user, values)
        if (match.template, method, values.get("command")) == ("/nodes/{node}/status", "POST", "shutdown"):
            pve.set_node_offline(values["node"])
            if values["node"] == "pve2":
                node_port.close()
        return data

    pve.synthesise = synthesise
    certfile, keyfile, der = make_cert(directory, hosts=("127.0.0.1",))
    await pve.start(certfile, keyfile)
    print(json.dumps({
        "url": pve.url,
        "fingerprint": ":".join("{0:02X}".format(b) for b in hashlib.sha256(der).digest()),
        "token_id": TOKEN_ID,
        "token_secret": TOKEN_SECRET,
        "node_port": node_port.sockets[0].getsockname()[1],
        "cert": certfile,
    }), flush=True)
    await asyncio.Event().wait()


asyncio.run(main(sys.argv[1]))
