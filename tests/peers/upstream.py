"""A service behind WakeHub's proxy, on aiohttp (a real HTTP/1.1 and WebSocket server):

GET  /           "hello from the service"
POST /echo       the request body back, with the request's headers as X-Seen-* headers
GET  /headers    the request's headers as JSON
GET  /big?mb=N   N MiB streamed in 64 KiB chunks
GET  /ws         a WebSocket echoing every message

Usage: upstream.py PORT [CERT KEY] — HTTPS with that PEM certificate and key when given;
prints "ready" once listening.
"""

import json
import sys

from aiohttp import web


async def hello(_request):
    return web.Response(text="hello from the service")


async def echo(request):
    body = await request.read()
    seen = {f"X-Seen-{k}": v for k, v in request.headers.items() if k.lower().startswith("x-")}
    return web.Response(body=body, headers=seen)


async def headers(request):
    return web.Response(text=json.dumps(dict(request.headers)), content_type="application/json")


async def big(request):
    mb = int(request.query.get("mb", "1"))
    resp = web.StreamResponse()
    resp.content_length = mb << 20
    await resp.prepare(request)
    chunk = b"x" * (64 << 10)
    for _ in range(mb * 16):
        await resp.write(chunk)
    await resp.write_eof()
    return resp


async def ws(request):
    sock = web.WebSocketResponse()
    await sock.prepare(request)
    async for msg in sock:
        if msg.type == web.WSMsgType.TEXT:
            await sock.send_str(msg.data)
        elif msg.type == web.WSMsgType.BINARY:
            await sock.send_bytes(msg.data)
    return sock


async def main(port, tls):
    app = web.Application(client_max_size=64 << 20)
    app.add_routes([web.get("/", hello), web.post("/echo", echo), web.get("/headers", headers),
                    web.get("/big", big), web.get("/ws", ws)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    context = None
    if tls:
        import ssl
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*tls)
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    print("ready", flush=True)
    import asyncio
    await asyncio.Event().wait()


if __name__ == "__main__":
    import asyncio
    asyncio.run(main(int(sys.argv[1]), sys.argv[2:4]))
