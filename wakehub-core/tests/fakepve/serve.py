"""Starts fakepve (the PyPI Proxmox VE API emulator) for the connector tests.

Usage: serve.py DIR. Listens on 127.0.0.1 on a free port with a fresh self-signed
certificate written to DIR, user root@pam / secret, an API token root@pam!ci, and guests:
VM 100 `vm-docker` and LXC 101 `lxc-jellyfin` (stopped), VM 102 `broken` whose start task
fails. Prints one JSON line: {"url", "fingerprint", "token_id", "token_secret"}.
"""

import asyncio
import hashlib
import json
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
    certfile, keyfile, der = make_cert(directory, hosts=("127.0.0.1",))
    await pve.start(certfile, keyfile)
    print(json.dumps({
        "url": pve.url,
        "fingerprint": ":".join("{0:02X}".format(b) for b in hashlib.sha256(der).digest()),
        "token_id": TOKEN_ID,
        "token_secret": TOKEN_SECRET,
    }), flush=True)
    await asyncio.Event().wait()


asyncio.run(main(sys.argv[1]))
