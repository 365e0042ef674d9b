"""A Shelly Gen2 device (a Shelly Plus Plug S) stand-in for the Shelly switch tests.

No Shelly can run here, so this follows Shelly's published Gen2 RPC API
(https://shelly-api-docs.shelly.cloud/gen2/) and, where the docs are silent, the Mongoose OS
HTTP RPC channel the Gen2 firmware is built on (mos `mg_rpc_channel_http.c`).

Device: id `shellyplusplugs-a8032ab12345`, model `SNPL-00112EU`, gen 2, app `PlugS`, fw 1.4.4,
one switch (`id` 0, off at start; no other component exists).

RPC over HTTP (General/RPCProtocol, General/RPCChannels):
- `GET /rpc/<Method>?k=v&...`: the query becomes the params object, each value taken as JSON
  (`id=0` -> 0, `on=true` -> true; strings must be quoted, `name="x"`), as the device does.
  `POST /rpc/<Method>` with a JSON params object as the body is the same call. The answer is the
  bare result object (200), or the bare error object `{"code": .., "message": ..}` with HTTP 400
  for -103 (invalid argument), 404 for 404 (`No handler for <Method>`) and -105 (no such
  component instance), 500 otherwise.
- `POST /rpc` with a JSON-RPC 2.0 request frame `{"id": 1, "method": "Switch.Set", "params":
  {"id": 0, "on": true}}` -> 200 `{"id": 1, "src": "<device id>", "result": {..}}`, or 200
  `{"id": 1, "src": .., "error": {"code": .., "message": ..}}` (`dst` echoes the frame's `src`);
  a body that is not a frame -> 400 `Invalid request` (but an empty body without credentials
  on a protected device gets the 401 challenge, so `curl --digest`'s empty probe works).
- `GET /shelly` -> the device info (never protected).

Methods: `Shelly.GetDeviceInfo` (`auth_en`, `auth_domain` = the device id when authentication is
enabled, null when not, as Shelly.GetDeviceInfo documents), `Switch.GetStatus` {id},
`Switch.Set` {id, on, toggle_after?} -> {"was_on"}, `Switch.Toggle` {id} -> {"was_on"}. Errors:
a missing or mistyped argument -103, an `id` other than 0 -105 (`Argument 'id', value N not
found!`), an unknown method 404 (`No handler for <Method>`).

Authentication (General/Authentication): HTTP Digest, RFC 7616, algorithm SHA-256, user
`admin`, realm = the device id, qop `auth`. Everything under /rpc is protected except
`Shelly.GetDeviceInfo` (and `/shelly`); an unknown method answers 404 before authentication, as
the device's RPC dispatcher does. A request without credentials, or with wrong ones, gets `401`
with an empty body and `WWW-Authenticate: Digest qop="auth", realm="<device id>",
nonce="<hex>", algorithm=SHA-256` (a fresh nonce each time; `stale=true` when the nonce was
expired). The `Authorization: Digest ...` header is checked fully: username `admin`, realm,
a nonce this server issued less than an hour ago, `uri` equal to the request's path and query
as sent, qop `auth`, algorithm SHA-256 (if given), and response = SHA256(HA1:nonce:nc:cnonce:
qop:HA2) with HA1 = SHA256(admin:realm:password), HA2 = SHA256(method:uri). A nonce may be used
again (with any nc) while it is valid, as 1.x firmware allows. NOT implemented: the `auth`
object inside a JSON-RPC frame (the device's other way to authenticate, used over WebSocket);
a frame carrying only that gets the HTTP 401 challenge. No WebSocket, no MQTT.

Usage: shelly.py PASSWORD (or `-`: authentication disabled); prints one JSON line
{"url", "device_id"} and serves on 127.0.0.1 on a free port until killed. Every request is
logged to stderr: method, path, whether it carried credentials and whether they passed.

Test controls, NOT part of the Shelly API (never protected):
- `GET /_test/state` -> {"output": bool, "calls": N (requests to /rpc...), "auth_failures": N
  (requests whose credentials were rejected), "challenges": N (401s to requests without
  credentials), "executed": [methods run, in order]}.
- `POST /_test/fail?count=N&status=S` (status 503 by default): the next N requests to /rpc...
  answer HTTP S with a plain-text body, before authentication, as an overloaded or rebooting
  device would; to test retries.
- `POST /_test/expire_nonces`: every nonce issued so far becomes expired.
- `POST /_test/load?watts=W`: what the appliance plugged in draws while the switch is on
  (42.7 W at start; `apower` reads it, 0 when off).
"""

import asyncio
import hashlib
import hmac
import json
import re
import secrets
import sys
import time

from aiohttp import web

PASSWORD = None if sys.argv[1] == "-" else sys.argv[1]
DEVICE_ID = "shellyplusplugs-a8032ab12345"
MAC = "A8032AB12345"
USER = "admin"
NONCE_LIFETIME = 3600.0
UNPROTECTED = {"Shelly.GetDeviceInfo"}

SWITCH = {"output": False, "source": "init", "energy": 1234.567, "timer": None, "load": 42.7}
STATS = {"calls": 0, "auth_failures": 0, "challenges": 0, "executed": []}
FAIL = {"count": 0, "status": 503}
NONCES = {}  # nonce -> time issued


class RpcError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


def sha256(s):
    return hashlib.sha256(s.encode()).hexdigest()


def device_info():
    return {"name": None, "id": DEVICE_ID, "mac": MAC, "slot": 0, "model": "SNPL-00112EU", "gen": 2,
            "fw_id": "20241011-114449/1.4.4-g6d2a586", "ver": "1.4.4", "app": "PlugS",
            "auth_en": PASSWORD is not None, "auth_domain": DEVICE_ID if PASSWORD is not None else None}


def switch_status():
    on = SWITCH["output"]
    apower = SWITCH["load"] if on else 0.0
    voltage = 230.4
    now = time.time()
    status = {"id": 0, "source": SWITCH["source"], "output": on, "apower": apower, "voltage": voltage,
              "current": round(apower / voltage, 3),
              "aenergy": {"total": round(SWITCH["energy"], 3),
                          "by_minute": [round(apower * 1000 / 60, 3), 0.0, 0.0],
                          "minute_ts": int(now // 60 * 60)},
              "temperature": {"tC": 38.2 if on else 31.5, "tF": 100.8 if on else 88.7}}
    if SWITCH["timer"] is not None:
        started, duration, _ = SWITCH["timer"]
        status["timer_started_at"] = started
        status["timer_duration"] = duration
    return status


def switch_id(params):
    if "id" not in params:
        raise RpcError(-103, "Missing required argument 'id'!")
    sid = params["id"]
    if not isinstance(sid, int) or isinstance(sid, bool):
        raise RpcError(-103, "Invalid argument 'id': expected a number")
    if sid != 0:
        raise RpcError(-105, "Argument 'id', value %s not found!" % sid)
    return sid


def cancel_timer():
    if SWITCH["timer"] is not None:
        SWITCH["timer"][2].cancel()
        SWITCH["timer"] = None


def set_output(on, source, toggle_after=None):
    was_on = SWITCH["output"]
    cancel_timer()
    SWITCH["output"] = on
    SWITCH["source"] = source
    if toggle_after is not None:
        def flip_back():
            SWITCH["timer"] = None
            SWITCH["output"] = not on
            SWITCH["source"] = "timer"
            print("timer: switch 0 back", "on" if not on else "off", file=sys.stderr, flush=True)
        handle = asyncio.get_running_loop().call_later(toggle_after, flip_back)
        SWITCH["timer"] = (round(time.time(), 2), toggle_after, handle)
    return {"was_on": was_on}


def call(method, params, source):
    if not isinstance(params, dict):
        raise RpcError(-103, "Invalid params: expected an object")
    if method == "Shelly.GetDeviceInfo":
        return device_info()
    if method == "Switch.GetStatus":
        switch_id(params)
        return switch_status()
    if method == "Switch.Set":
        switch_id(params)
        if "on" not in params:
            raise RpcError(-103, "Missing required argument 'on'!")
        if not isinstance(params["on"], bool):
            raise RpcError(-103, "Invalid argument 'on': expected a boolean")
        toggle_after = params.get("toggle_after")
        if toggle_after is not None and (isinstance(toggle_after, bool) or not isinstance(toggle_after, (int, float))
                                         or toggle_after <= 0):
            raise RpcError(-103, "Invalid argument 'toggle_after': expected a positive number")
        return set_output(params["on"], source, toggle_after)
    if method == "Switch.Toggle":
        switch_id(params)
        return set_output(not SWITCH["output"], source)
    raise RpcError(404, "No handler for %s" % method)


def known(method):
    return method in ("Shelly.GetDeviceInfo", "Switch.GetStatus", "Switch.Set", "Switch.Toggle")


# --- Digest authentication (RFC 7616, SHA-256) ---

def new_nonce():
    now = time.time()
    nonce = "%x%s" % (int(now), secrets.token_hex(4))
    NONCES[nonce] = now
    return nonce


def challenge(stale=False):
    header = 'Digest qop="auth", realm="%s", nonce="%s", algorithm=SHA-256' % (DEVICE_ID, new_nonce())
    if stale:
        header += ", stale=true"
    return web.Response(status=401, body=b"", headers={"WWW-Authenticate": header, "Content-Type": "application/json"})


def parse_digest(header):
    if not header.lower().startswith("digest "):
        return None
    fields = {}
    for m in re.finditer(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))', header[7:]):
        value = m.group(2) if m.group(2) is not None else m.group(3)
        fields[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
    return fields


def check_digest(request):
    """None when the credentials pass, else (reason, stale)."""
    fields = parse_digest(request.headers["Authorization"])
    if fields is None:
        return "not a Digest Authorization header", False
    for key in ("username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce"):
        if key not in fields:
            return "no %s in the Authorization header" % key, False
    if fields["username"] != USER:
        return "unknown user %r" % fields["username"], False
    if fields["realm"] != DEVICE_ID:
        return "wrong realm %r" % fields["realm"], False
    if fields.get("algorithm", "SHA-256").upper() != "SHA-256":
        return "unsupported algorithm %r" % fields["algorithm"], False
    if fields["qop"] != "auth":
        return "unsupported qop %r" % fields["qop"], False
    if fields["uri"] != request.raw_path:
        return "uri %r is not the request's %r" % (fields["uri"], request.raw_path), False
    issued = NONCES.get(fields["nonce"])
    if issued is None:
        return "unknown nonce %r" % fields["nonce"], False
    if time.time() - issued >= NONCE_LIFETIME:
        return "expired nonce %r" % fields["nonce"], True
    ha1 = sha256("%s:%s:%s" % (USER, DEVICE_ID, PASSWORD))
    ha2 = sha256("%s:%s" % (request.method, fields["uri"]))
    expected = sha256(":".join([ha1, fields["nonce"], fields["nc"], fields["cnonce"], fields["qop"], ha2]))
    if not hmac.compare_digest(expected, fields["response"].lower()):
        return "wrong response digest (wrong password?)", False
    return None


def log(request, note):
    print(request.method, request.raw_path, note, file=sys.stderr, flush=True)


def authorize(request, method):
    """None when the call may run, else the 401 to answer (the call is logged either way)."""
    carried = "Authorization" in request.headers
    if PASSWORD is None:
        log(request, "%s: auth disabled" % (method or "-"))
        return None
    if method in UNPROTECTED:
        log(request, "%s: unprotected (%s)" % (method, "with auth" if carried else "no auth"))
        return None
    if not carried:
        STATS["challenges"] += 1
        log(request, "%s: no auth -> 401 challenge" % method)
        return challenge()
    failure = check_digest(request)
    if failure is not None:
        reason, stale = failure
        STATS["auth_failures"] += 1
        log(request, "%s: auth FAILED (%s) -> 401" % (method, reason))
        return challenge(stale)
    log(request, "%s: auth passed" % method)
    return None


def injected_failure(request):
    STATS["calls"] += 1
    if FAIL["count"] > 0:
        FAIL["count"] -= 1
        status = FAIL["status"]
        log(request, "injected failure -> %d (%d more)" % (status, FAIL["count"]))
        return web.Response(status=status, text="%d injected failure\n" % status)
    return None


def rest_error(e):
    status = {-103: 400, -105: 404, 404: 404, 403: 403}.get(e.code, 500)
    return web.json_response({"code": e.code, "message": e.message}, status=status)


def query_params(request):
    params = {}
    for k, v in request.query.items():
        try:
            params[k] = json.loads(v)
        except ValueError:
            params[k] = v  # the device would reject the frame; here the type checks do
    return params


async def rest(request):
    """GET/POST /rpc/<Method>: bare result or bare error object."""
    if (failed := injected_failure(request)) is not None:
        return failed
    method = request.match_info["method"]
    if not known(method):
        log(request, "%s: no handler -> 404" % method)
        return rest_error(RpcError(404, "No handler for %s" % method))
    if (denied := authorize(request, method)) is not None:
        return denied
    if request.method == "POST" and request.can_read_body:
        try:
            params = json.loads(await request.text() or "{}")
        except ValueError:
            return web.Response(status=400, text="Invalid request\n")
    else:
        params = query_params(request)
    try:
        result = call(method, params, "HTTP_in")
    except RpcError as e:
        log(request, "%s -> error %d %s" % (method, e.code, e.message))
        return rest_error(e)
    STATS["executed"].append(method)
    return web.json_response(result)


async def frame(request):
    """POST /rpc with a JSON-RPC 2.0 request frame: a response frame."""
    if (failed := injected_failure(request)) is not None:
        return failed
    body = await request.text()
    if not body.strip() and PASSWORD is not None and "Authorization" not in request.headers:
        # curl --digest (and other clients) probe with an empty POST first: challenge it.
        STATS["challenges"] += 1
        log(request, "empty body, no auth -> 401 challenge")
        return challenge()
    try:
        req = json.loads(body)
        method = req["method"]
        assert isinstance(req, dict) and isinstance(method, str)
    except (ValueError, KeyError, TypeError, AssertionError):
        log(request, "not a JSON-RPC frame -> 400")
        return web.Response(status=400, text="Invalid request\n")
    resp = {"id": req.get("id"), "src": DEVICE_ID}
    if "src" in req:
        resp["dst"] = req["src"]
    if not known(method):
        log(request, "%s: no handler -> error 404" % method)
        resp["error"] = {"code": 404, "message": "No handler for %s" % method}
        return web.json_response(resp)
    if (denied := authorize(request, method)) is not None:
        return denied
    try:
        resp["result"] = call(method, req.get("params") or {}, "HTTP_in")
        STATS["executed"].append(method)
    except RpcError as e:
        log(request, "%s -> error %d %s" % (method, e.code, e.message))
        resp["error"] = {"code": e.code, "message": e.message}
    return web.json_response(resp)


async def shelly(request):
    log(request, "unprotected")
    return web.json_response(device_info())


async def test_state(request):
    return web.json_response({"output": SWITCH["output"], **STATS})


async def test_fail(request):
    try:
        FAIL["count"] = int(request.query.get("count", "1"))
        FAIL["status"] = int(request.query.get("status", "503"))
    except ValueError:
        return web.Response(status=400, text="count and status must be integers\n")
    log(request, "test control: fail the next %d calls with %d" % (FAIL["count"], FAIL["status"]))
    return web.json_response({"count": FAIL["count"], "status": FAIL["status"]})


async def test_expire_nonces(request):
    for nonce in NONCES:
        NONCES[nonce] = 0.0
    log(request, "test control: %d nonces expired" % len(NONCES))
    return web.json_response({"expired": len(NONCES)})


async def test_load(request):
    try:
        watts = float(request.query["watts"])
    except (KeyError, ValueError):
        return web.Response(status=400, text="watts must be a number\n")
    SWITCH["load"] = watts
    log(request, "test control: the appliance draws %.1f W" % watts)
    return web.json_response({"watts": watts})


async def main():
    app = web.Application()
    app.router.add_get("/shelly", shelly)
    app.router.add_post("/rpc", frame)
    app.router.add_get("/rpc/{method}", rest)
    app.router.add_post("/rpc/{method}", rest)
    app.router.add_get("/_test/state", test_state)
    app.router.add_post("/_test/fail", test_fail)
    app.router.add_post("/_test/expire_nonces", test_expire_nonces)
    app.router.add_post("/_test/load", test_load)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(json.dumps({"url": "http://127.0.0.1:%d" % port, "device_id": DEVICE_ID}), flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
