// Drives the official `socket.io-client` through a scripted session, for the Python interop tests.
//
// stdin:  ONE JSON object (the "script", see tests/interop/js_client.py for the full shape):
//   {"url": "http://127.0.0.1:PORT", "options": {...io() options...}, "steps": [...],
//    "record": ["event", ...], "timeout_ms": 20000}
// stdout: one JSON object per line per observation, nothing else; `{"type": "done"}` last.
// stderr: diagnostics only.
// exit:   0 when every step ran (refusals and timeouts of steps are observations, not errors);
//         1 on a harness error (bad script, crash); 2 when the global timeout fired.
//
// Why a script and not an API: the tests need the behaviour of the real client library, as a
// browser app or a node service would see it, including its reconnection and ack semantics.

import { existsSync, writeFileSync } from "node:fs";
import { io } from "socket.io-client";

const DEFAULT_GLOBAL_TIMEOUT_MS = 20000;
const DEFAULT_CONNECT_TIMEOUT_MS = 10000;
const DEFAULT_ACK_TIMEOUT_MS = 5000;
const DEFAULT_WAIT_TIMEOUT_MS = 5000;

let finished = false;
let currentStep = -1;

function observe(observation) {
  if (!finished) {
    process.stdout.write(JSON.stringify(observation) + "\n");
  }
}

function fail(code, message) {
  finished = true;
  process.stderr.write(`sio_client.mjs: ${message}\n`);
  // Exit only once stdout is flushed: pipes may be asynchronous.
  process.stdout.write("", () => process.exit(code));
}

async function readScript() {
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  const script = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  if (typeof script !== "object" || script === null || typeof script.url !== "string") {
    throw new Error("the script must be a JSON object with a string `url`");
  }
  if (!Array.isArray(script.steps)) {
    throw new Error("the script needs a `steps` array");
  }
  return script;
}

// Clients of the real server must not silently reconnect behind the test's back, so
// reconnection is off unless the script turns it on. `origin` (a convenience of this script)
// becomes an `Origin` header for BOTH transports: socket.io-client's own `origin` option only
// reaches the websocket transport (it is an option of the `ws` package), not long-polling.
function clientOptions(options) {
  const result = { ...options, autoConnect: false };
  result.reconnection = options.reconnection ?? false;
  if (typeof options.origin === "string") {
    const headers = { ...(options.extraHeaders ?? {}) };
    const named = Object.keys(headers).some((name) => name.toLowerCase() === "origin");
    if (!named) {
      headers.Origin = options.origin;
    }
    result.extraHeaders = headers;
  }
  return result;
}

// Every occurrence of a watched event is observed when it arrives and queued, so that a `wait`
// step also sees an event that arrived before the step started (e.g. while awaiting an ack).
class EventQueues {
  constructor(names) {
    this.names = new Set(names);
    this.queues = new Map();
    this.waiters = new Map();
  }

  attach(socket) {
    socket.onAny((event, ...args) => {
      if (!this.names.has(event)) {
        return;
      }
      observe({ type: "event", event, args });
      const waiter = this.waiters.get(event);
      if (waiter) {
        this.waiters.delete(event);
        waiter();
        return;
      }
      this.queues.set(event, (this.queues.get(event) ?? 0) + 1);
    });
  }

  // Resolves true when an occurrence is (or becomes) available, false after `ms`.
  take(event, ms) {
    const queued = this.queues.get(event) ?? 0;
    if (queued > 0) {
      this.queues.set(event, queued - 1);
      return Promise.resolve(true);
    }
    return withTimeout(ms, (resolve) => this.waiters.set(event, () => resolve(true)), () => {
      this.waiters.delete(event);
    });
  }
}

// A bounded wait: `start(resolve)` arranges for resolve(true); false after `ms`.
function withTimeout(ms, start, onTimeout = () => {}) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      onTimeout();
      resolve(false);
    }, ms);
    start((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

function connectStep(socket, step) {
  if (socket.connected) {
    return Promise.resolve(true);
  }
  return withTimeout(step.timeout_ms ?? DEFAULT_CONNECT_TIMEOUT_MS, (resolve) => {
    const done = () => {
      socket.off("connect", done);
      socket.off("connect_error", done);
      resolve(true);
    };
    socket.on("connect", done);
    socket.on("connect_error", done);
    socket.connect();
  });
}

function emitStep(socket, step, index) {
  const args = step.args ?? [];
  if (!step.ack) {
    socket.emit(step.event, ...args);
    return Promise.resolve(true);
  }
  return new Promise((resolve) => {
    const ms = step.ack_timeout_ms ?? DEFAULT_ACK_TIMEOUT_MS;
    socket.timeout(ms).emit(step.event, ...args, (err, ...ackArgs) => {
      if (!err) {
        observe({ type: "ack", step: index, event: step.event, args: ackArgs });
      } else if (err.message === "operation has timed out") {
        observe({ type: "ack_timeout", step: index });
      } else {
        // e.g. "socket has been disconnected": the ack can never arrive.
        observe({ type: "ack_error", step: index, message: err.message });
      }
      resolve(true);
    });
  });
}

function waitDisconnectStep(socket, step) {
  if (!socket.connected) {
    return Promise.resolve(true);
  }
  let listener = null;
  return withTimeout(
    step.timeout_ms ?? DEFAULT_WAIT_TIMEOUT_MS,
    (resolve) => {
      listener = () => resolve(true);
      socket.once("disconnect", listener);
    },
    () => socket.off("disconnect", listener),
  );
}

async function runStep(socket, queues, step, index) {
  switch (step.op) {
    case "connect":
      return connectStep(socket, step);
    case "emit":
      return emitStep(socket, step, index);
    case "wait":
      return queues.take(step.event, step.timeout_ms ?? DEFAULT_WAIT_TIMEOUT_MS);
    case "wait_disconnect":
      return waitDisconnectStep(socket, step);
    case "sleep":
      await new Promise((resolve) => setTimeout(resolve, step.ms ?? 0));
      return true;
    case "disconnect":
      socket.disconnect();
      return true;
    // connection state recovery: lose the transport (not a client disconnect), and steer
    // the next connect (a refreshed credential, another node as a balancer would)
    case "close_transport":
      socket.io.engine.close();
      return true;
    case "set_auth":
      socket.auth = step.auth;
      return true;
    case "set_url":
      socket.io.uri = step.url;
      return true;
    case "write_file":
      writeFileSync(step.path, step.text ?? "");
      return true;
    case "write_pid": // the recovery session id (socket.io-client keeps it private)
      writeFileSync(step.path, socket._pid ?? "");
      return true;
    case "wait_file":
      return waitFile(step.path, step.timeout_ms ?? DEFAULT_WAIT_TIMEOUT_MS);
    default:
      throw new Error(`step ${index}: unknown op ${JSON.stringify(step.op)}`);
  }
}

// Resolves true once `path` exists (the test signals it), false after `ms`.
async function waitFile(path, ms) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (existsSync(path)) {
      return true;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return false;
}

function watchedEvents(script) {
  const waited = script.steps.filter((step) => step.op === "wait").map((step) => step.event);
  return [...(script.record ?? []), ...waited];
}

function observeLifecycle(socket) {
  socket.on("connect", () =>
    observe({ type: "connect", id: socket.id, recovered: socket.recovered ?? false }),
  );
  socket.on("connect_error", (err) => {
    observe({ type: "connect_error", message: err.message, data: err.data ?? null });
  });
  socket.on("disconnect", (reason) => observe({ type: "disconnect", reason }));
}

async function main() {
  const script = await readScript();
  const globalMs = script.timeout_ms ?? DEFAULT_GLOBAL_TIMEOUT_MS;
  const globalTimer = setTimeout(
    () => fail(2, `global timeout of ${globalMs} ms at step ${currentStep}`),
    globalMs,
  );
  const socket = io(script.url, clientOptions(script.options ?? {}));
  const queues = new EventQueues(watchedEvents(script));
  queues.attach(socket);
  observeLifecycle(socket);

  for (const [index, step] of script.steps.entries()) {
    currentStep = index;
    if (!(await runStep(socket, queues, step, index))) {
      observe({ type: "wait_timeout", step: index });
    }
  }
  observe({ type: "done" });
  finished = true;
  clearTimeout(globalTimer);
  socket.disconnect();
  process.stdout.write("", () => process.exit(0));
}

main().catch((err) => fail(1, `harness error at step ${currentStep}: ${err?.stack ?? err}`));
