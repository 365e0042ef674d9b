"""A Home Assistant REST API stand-in for the HTTP switch plugin's tests.

No Home Assistant can run here, so this follows its published REST API
(https://developers.home-assistant.io/docs/api/rest/): `Authorization: Bearer <long-lived
token>` on every call (else `401: Unauthorized`), `GET /api/` -> {"message": "API running."},
`GET /api/states/<entity_id>` -> the state object (404 {"message": "Entity not found."}),
`POST /api/services/<domain>/<service>` with {"entity_id": ...} -> the list of changed
states, `POST /api/states/<entity_id>` with {"state": ..., "attributes": {...}} -> the state
(201 when created, 200 when updated), as an integration reporting a sensor does. Entities:
`switch.nas_plug` (off); others are created by posting their state. Usage: homeassistant.py TOKEN; prints one JSON
line {"url"} and serves on 127.0.0.1 until killed. Every call is logged to stderr.
"""

import asyncio
import datetime
import json
import sys

from aiohttp import web

TOKEN = sys.argv[1]
STATES = {"switch.nas_plug": "off"}
ATTRIBUTES = {"switch.nas_plug": {"friendly_name": "NAS plug"}}


def state(entity_id):
    now = datetime.datetime.now(datetime.timezone.utc).isoformat()
    return {"entity_id": entity_id, "state": STATES[entity_id], "attributes": ATTRIBUTES.get(entity_id, {}),
            "last_changed": now, "last_updated": now, "context": {"id": "01", "parent_id": None, "user_id": None}}


@web.middleware
async def auth(request, handler):
    print(request.method, request.path, "auth" if "Authorization" in request.headers else "no auth",
          file=sys.stderr, flush=True)
    if request.headers.get("Authorization") != "Bearer " + TOKEN:
        return web.Response(status=401, text="401: Unauthorized")
    return await handler(request)


async def api(request):
    return web.json_response({"message": "API running."})


async def get_state(request):
    entity_id = request.match_info["entity_id"]
    if entity_id not in STATES:
        return web.json_response({"message": "Entity not found."}, status=404)
    return web.json_response(state(entity_id))


async def set_state(request):
    entity_id = request.match_info["entity_id"]
    try:
        data = await request.json()
        new = data["state"]
    except (ValueError, KeyError, TypeError):
        return web.json_response({"message": "No state specified."}, status=400)
    created = entity_id not in STATES
    STATES[entity_id] = str(new)
    ATTRIBUTES[entity_id] = data.get("attributes") or {}
    return web.json_response(state(entity_id), status=201 if created else 200)


async def service(request):
    domain, name = request.match_info["domain"], request.match_info["service"]
    data = await request.json() if request.can_read_body else {}
    entity_id = data.get("entity_id")
    if domain != "switch" or name not in ("turn_on", "turn_off", "toggle"):
        return web.json_response({"message": "Service not found."}, status=400)
    if entity_id not in STATES:
        return web.json_response([])
    new = {"turn_on": "on", "turn_off": "off"}.get(name) or ("off" if STATES[entity_id] == "on" else "on")
    changed = STATES[entity_id] != new
    STATES[entity_id] = new
    return web.json_response([state(entity_id)] if changed else [])


async def main():
    app = web.Application(middlewares=[auth])
    app.router.add_get("/api/", api)
    app.router.add_get("/api/states/{entity_id}", get_state)
    app.router.add_post("/api/states/{entity_id}", set_state)
    app.router.add_post("/api/services/{domain}/{service}", service)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(json.dumps({"url": "http://127.0.0.1:%d" % port}), flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
