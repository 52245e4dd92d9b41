// The official socket.io-client connecting with an auth payload of a given size, for the
// frame-limit tests (tests/security/test_frame_limit.py).
//
// stdin:  {"url": "http://127.0.0.1:PORT", "transports": ["websocket"], "token_chars": N,
//          "timeout_ms": 5000}
// stdout: what the client reported first, and after how long, then {"type": "done"}:
//   {"type": "connect_error", "ms": T, "message": MSG, "data": DATA-or-null}
//   {"type": "disconnect", "ms": T, "reason": REASON, "code": WEBSOCKET-CLOSE-CODE-or-null}
//   {"type": "connect", "ms": T} | {"type": "timeout", "ms": T}
// The client's own connect timeout is `timeout_ms`: an answer long before it is "at once".

import { io } from "socket.io-client";

const chunks = [];
for await (const chunk of process.stdin) {
  chunks.push(chunk);
}
const script = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const started = Date.now();
const socket = io(script.url, {
  transports: script.transports,
  auth: { token: "a".repeat(script.token_chars) },
  reconnection: false,
  timeout: script.timeout_ms,
  autoConnect: false,
});

function report(observation) {
  process.stdout.write(JSON.stringify({ ...observation, ms: Date.now() - started }) + "\n");
  process.stdout.write(JSON.stringify({ type: "done" }) + "\n", () => process.exit(0));
}

socket.on("connect", () => report({ type: "connect" }));
socket.on("connect_error", (err) =>
  report({ type: "connect_error", message: err.message, data: err.data ?? null }),
);
socket.on("disconnect", (reason, details) =>
  report({ type: "disconnect", reason, code: details?.context?.code ?? null }),
);
setTimeout(() => report({ type: "timeout" }), script.timeout_ms + 1000);
socket.connect();
