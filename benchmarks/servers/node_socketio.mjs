// The Node baseline of benchmarks/realtime.py: socket.io 4.8 with every default (its
// own HTTP server, permessage-deflate off as socket.io 4 defaults, no authentication),
// and the same handlers as benchmarks/servers/bare.py:
//   echo            -> ack {ok: true}
//   room:join {room} -> join the room, ack {ok: true, room}
//   chat:send {room, text, note} -> emit chat:message {room, text, note, from} to the
//                      whole room (the sender too, as ssoio's relay does), ack {ok: true}
// No field visibility: the relay is what an application without ssoio's guard writes.
//
// --fanout-room ROOM adds what benchmarks/fanout.py needs, as benchmarks/servers/bare.py
// does, and nothing else changes: every connection joins ROOM on connection (its CONNECT
// auth, an access token, is ignored), and POST /api/v1/emit with ssoio's JSON body
// {room, event, data} does io.to(room).emit(event, data) and answers 200 {"ok":true}
// (no authentication: the bearer token is ignored). The route is the HTTP server's own
// request listener, which socket.io's attach keeps for every path but /socket.io/.
//
// Run (benchmarks/realtime.py does): node benchmarks/servers/node_socketio.mjs --port N
// (benchmarks/fanout.py adds --fanout-room tenant:acme)

import { createServer } from "node:http";
import { Server } from "socket.io";

function portArgument() {
  const at = process.argv.indexOf("--port");
  const port = at >= 0 ? Number(process.argv[at + 1]) : NaN;
  if (!Number.isInteger(port) || port <= 0) {
    console.error("usage: node node_socketio.mjs --port N");
    process.exit(2);
  }
  return port;
}

function fanoutRoomArgument() {
  const at = process.argv.indexOf("--fanout-room");
  return at >= 0 ? String(process.argv[at + 1] ?? "") : null;
}

function respond(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

// POST /api/v1/emit {room, event, data} -> io.to(room).emit(event, data); 200 {ok: true}
function emitRoute(req, res) {
  if (req.method !== "POST" || req.url !== "/api/v1/emit") {
    respond(res, 404, { ok: false });
    return;
  }
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      body = null;
    }
    if (body === null || typeof body !== "object" || !("room" in body) || !("event" in body)) {
      respond(res, 400, { ok: false });
      return;
    }
    io.to(String(body.room)).emit(String(body.event), body.data);
    respond(res, 200, { ok: true });
  });
}

const fanoutRoom = fanoutRoomArgument();
// Without --fanout-room the server is exactly realtime.py's: no request listener of its own.
const httpServer = fanoutRoom === null ? createServer() : createServer(emitRoute);
const io = new Server(httpServer);

io.on("connection", (socket) => {
  if (fanoutRoom !== null) socket.join(fanoutRoom);
  socket.on("echo", (_data, ack) => {
    if (typeof ack === "function") ack({ ok: true });
  });
  socket.on("room:join", (data, ack) => {
    const room = String(data?.room ?? "");
    socket.join(room);
    if (typeof ack === "function") ack({ ok: true, room });
  });
  socket.on("chat:send", (data, ack) => {
    const room = String(data?.room ?? "");
    io.to(room).emit("chat:message", { ...data, from: socket.id });
    if (typeof ack === "function") ack({ ok: true });
  });
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    io.close();
    process.exit(0);
  });
}

httpServer.listen(portArgument(), "127.0.0.1");
