/*
 * ssoio browser client helper, served at /ssoio/client.js (load /ssoio/socket.io.min.js first).
 *
 *   const sso = SsoioClient.connect({
 *     onSignedOut: (code) => { location.href = "/auth/login?next=" + encodeURIComponent(location.pathname); },
 *   });
 *   sso.socket.on("chat:message", (m) => ...);
 *   const answer = await sso.call("room:join", { room: "tenant:acme:general" });
 *
 * What it does for you:
 *  - connects with an access token from the same-origin hand-off (GET /auth/token), fetched
 *    afresh for every (re)connect, so a reconnect never reuses an expired token;
 *  - answers `auth:expiring` by fetching a fresh token and sending `auth:refresh` in-band;
 *  - after `auth:revoked` it stops: `token_expired` reconnects once with a new token if the
 *    session can still provide one, anything else (logged_out, kicked...) calls onSignedOut;
 *  - `call(event, payload)` resolves with the ack ({ok: true, ...} or {ok: false, error}).
 */
(function (global) {
  "use strict";

  async function handOff() {
    const response = await fetch("/auth/token", { credentials: "same-origin", cache: "no-store" });
    if (response.status !== 200) return null;
    return (await response.json()).access_token;
  }

  function connect(options) {
    const opts = options || {};
    const onSignedOut = opts.onSignedOut || function () {};
    let revokedCode = null;
    const socket = global.io(opts.url, {
      transports: opts.transports || ["websocket", "polling"],
      tryAllTransports: true, // fall back to long-polling where WebSocket is blocked
      reconnection: true,
      // evaluated before every (re)connect: always a current token, never a stale one
      auth: (cb) => { handOff().then((token) => cb(token ? { token } : {})); },
    });

    socket.on("auth:expiring", async () => {
      const token = await handOff();
      if (!token) return onSignedOut("token_expired");
      const answer = await socket.timeout(10000).emitWithAck("auth:refresh", { token }).catch(() => null);
      if (!answer || !answer.ok) onSignedOut((answer && answer.error && answer.error.code) || "token_expired");
    });

    socket.on("auth:revoked", (notice) => { revokedCode = notice && notice.code; });

    socket.on("disconnect", async (reason) => {
      if (reason !== "io server disconnect") return; // transport trouble: socket.io reconnects itself
      const code = revokedCode || "kicked";
      revokedCode = null;
      if (code === "token_expired" && (await handOff())) {
        socket.connect(); // a fresh token comes from `auth` above
        return;
      }
      onSignedOut(code);
    });

    socket.on("connect_error", (error) => {
      const code = error && error.data && error.data.code;
      if (code && error.message === "unauthorized") {
        socket.disconnect(); // no point retrying with a session that cannot provide a token
        onSignedOut(code);
      }
    });

    return {
      socket,
      call(event, payload) {
        return socket.timeout(opts.ackTimeoutMs || 10000).emitWithAck(event, payload)
          .catch(() => ({ ok: false, error: { code: "timeout", message: "no answer from the server" } }));
      },
      close() { socket.disconnect(); },
    };
  }

  global.SsoioClient = { connect, handOff };
})(window);
