// The server bench's idle subscribers, from a process of their own: opens N WebSockets to
// URL (graphql-transport-ws, Node's own WebSocket), authenticates each with TOKEN, subscribes
// each to the journal's events, prints "ready" once all are acknowledged, and holds them.
// Usage: node --experimental-websocket hold-subscribers.mjs URL TOKEN N
const [url, token, n] = [process.argv[2], process.argv[3], Number(process.argv[4])];
let ready = 0;
const sockets = [];
for (let i = 0; i < n; i++) {
  const ws = new WebSocket(url, 'graphql-transport-ws');
  sockets.push(ws);
  ws.onopen = () => ws.send(JSON.stringify({ type: 'connection_init', payload: { token } }));
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.type === 'connection_ack') {
      ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: 'subscription { events { id kind } }' } }));
      if (++ready === n) console.log('ready');
    }
  };
  ws.onerror = (e) => { console.error('error', i, e.message); };
  if (i % 200 === 199) await new Promise((r) => setTimeout(r, 200));
}
setInterval(() => {}, 1000);
