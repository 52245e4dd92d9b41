// The Node baseline of benchmarks/realtime.py: socket.io 4.8 with every default (its
// own HTTP server, permessage-deflate off as socket.io 4 defaults, no authentication),
// and the same handlers as benchmarks/servers/bare.py:
//   echo            -> ack {ok: true}
//   room:join {room} -> join the room, ack {ok: true, room}
//   chat:send {room, text, note} -> emit chat:message {room, text, note, from} to the
//                      whole room (the sender too, as ssoio's relay does), ack {ok: true}
// No field visibility: the relay is what an application without ssoio's guard writes.
//
// Run (benchmarks/realtime.py does): node benchmarks/servers/node_socketio.mjs --port N

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

const httpServer = createServer();
const io = new Server(httpServer);

io.on("connection", (socket) => {
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
