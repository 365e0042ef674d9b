"""Where WakeHub's notifications land, on aiohttp:

- an ntfy stand-in following ntfy's published publish API (https://docs.ntfy.sh/publish/):
  `POST /{topic}` with the message as the body and `Title`/`X-Title`, `Priority`/`X-Priority`,
  `Tags`/`X-Tags` headers; access control by `Authorization: Bearer TOKEN` (401 otherwise);
  answers the message as ntfy does (`{"id", "time", "event": "message", "topic", ...}`);
- a webhook receiver, `POST /hook`, that checks `X-WakeHub-Signature` (HMAC-SHA256 of
  `X-WakeHub-Timestamp` + "." + body, keyed with SECRET) as a receiver should;
- `GET /received`: everything received, in order; `POST /fail?n=K`: the next K
  notifications are answered 503 (a target that is down for a while).

Usage: sinks.py PORT SECRET TOKEN — prints "ready" once listening.
"""

import asyncio
import hashlib
import hmac
import json
import sys
import time
import uuid

from aiohttp import web

received = []
failing = {"n": 0}


def header(request, *names):
    for n in names:
        if n in request.headers:
            return request.headers[n]
    return None


async def fail(request):
    failing["n"] = int(request.query.get("n", "1"))
    return web.Response(text="ok")


def should_fail():
    if failing["n"] > 0:
        failing["n"] -= 1
        return True
    return False


async def hook(request):
    body = await request.read()
    secret = request.app["secret"].encode()
    timestamp = request.headers.get("X-WakeHub-Timestamp", "")
    expected = "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    verified = hmac.compare_digest(expected, request.headers.get("X-WakeHub-Signature", ""))
    if should_fail():
        received.append({"kind": "webhook", "refused": 503})
        return web.Response(status=503)
    received.append({"kind": "webhook", "verified": verified, "json": json.loads(body)})
    return web.Response(status=200 if verified else 401)


async def ntfy(request):
    topic = request.match_info["topic"]
    if request.headers.get("Authorization") != "Bearer " + request.app["token"]:
        received.append({"kind": "ntfy", "refused": 401})
        return web.json_response({"code": 40101, "http": 401, "error": "unauthorized"}, status=401)
    if should_fail():
        received.append({"kind": "ntfy", "refused": 503})
        return web.Response(status=503)
    message = (await request.read()).decode()
    msg = {
        "id": uuid.uuid4().hex[:12], "time": int(time.time()), "expires": int(time.time()) + 43200,
        "event": "message", "topic": topic, "message": message,
        "title": header(request, "X-Title", "Title", "t"),
        "priority": {"high": 4, "default": 3}.get(header(request, "X-Priority", "Priority", "p") or "default", 3),
        "tags": (header(request, "X-Tags", "Tags", "ta") or "").split(","),
    }
    received.append({"kind": "ntfy", **msg})
    return web.json_response(msg)


async def listing(_request):
    return web.json_response(received)


async def main(port, secret, token):
    app = web.Application()
    app["secret"], app["token"] = secret, token
    app.add_routes([web.post("/hook", hook), web.post("/fail", fail), web.get("/received", listing),
                    web.post("/{topic}", ntfy)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
