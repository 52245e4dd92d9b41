/*
 * The ssoio demo page. Everything that came from a client or the network (names, chat
 * text, room names, error messages) is rendered with textContent, never as HTML; the
 * page's Content-Security-Policy allows no inline script either.
 */
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const rooms = new Set();
  let sso = null;

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function setStatus(text) { $("status").textContent = text; }

  function log(text, code) {
    const item = element("li", text, code ? "refused" : "");
    if (code) { item.append(" "); item.append(element("code", code)); }
    $("log").prepend(item);
  }

  function refusal(what, answer) {
    const error = (answer && answer.error) || { code: "unknown", message: "" };
    log(what + " refused: " + error.message, error.code);
  }

  function showMe(me) {
    const list = $("me");
    list.replaceChildren();
    const rows = [
      ["user", me.username || me.sub], ["email", me.email || "-"], ["tenant", (me.attributes.tenant || []).join(", ") || "-"],
      ["roles", me.roles.join(", ") || "-"], ["groups", me.groups.join(", ") || "-"], ["scopes", me.scopes.join(" ")],
      ["auto-joined", me.auto_join.join(", ")],
    ];
    for (const [name, value] of rows) { list.append(element("dt", name), element("dd", value)); }
    $("admin").hidden = !me.roles.includes("admin");
    const tenant = (me.attributes.tenant || [])[0];
    if (tenant) $("room-input").value = "tenant:" + tenant + ":general";
  }

  function addRoom(room) {
    if (rooms.has(room)) return;
    rooms.add(room);
    $("rooms").append(element("li", room));
    $("chat-room").append(new Option(room, room));
  }

  function removeRoom(room) {
    rooms.delete(room);
    for (const item of Array.from($("rooms").children)) { if (item.textContent === room) item.remove(); }
    for (const option of Array.from($("chat-room").options)) { if (option.value === room) option.remove(); }
  }

  function showMessage(message) {
    const item = element("li");
    item.append(element("span", (message.from && message.from.username) || "?", "from"));
    item.append(element("span", message.text));
    item.title = message.room;
    $("messages").append(item);
  }

  function showPresence(members) {
    const body = $("presence").querySelector("tbody");
    body.replaceChildren();
    for (const member of members) {
      const row = element("tr");
      row.append(element("td", member.sub), element("td", member.username || ""), element("td", member.email || ""));
      body.append(row);
    }
  }

  function wire(me) {
    sso = SsoioClient.connect({
      onSignedOut: (code) => { setStatus("disconnected: " + code); log("the server ended this connection", code); },
    });
    const socket = sso.socket;
    socket.on("connect", () => {
      setStatus("connected as " + (me.username || me.sub));
      for (const room of me.auto_join) addRoom(room);
    });
    socket.on("chat:message", showMessage);
    socket.on("announcement", (a) => log("announcement from " + ((a.from && a.from.username) || "?") + ": " + a.text));
    socket.on("room:revoked", (r) => { removeRoom(r.room); log("left " + r.room, r.code); });
    socket.on("auth:expiring", (n) => log("token expires in " + n.expires_in + " s: refreshing"));
    socket.on("auth:revoked", (n) => log("signed out by the server", n.code));

    $("join-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const room = $("room-input").value.trim();
      const answer = await sso.call("room:join", { room });
      if (answer.ok) { addRoom(room); log("joined " + room); } else refusal("joining " + room, answer);
    });
    $("chat-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const answer = await sso.call("chat:send", { room: $("chat-room").value, text: $("chat-text").value });
      if (answer.ok) $("chat-text").value = ""; else refusal("sending", answer);
    });
    $("presence-refresh").addEventListener("click", async () => {
      const answer = await sso.call("presence:list", { room: $("chat-room").value });
      if (answer.ok) showPresence(answer.members); else refusal("listing presence", answer);
    });
    $("announce-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const answer = await sso.call("broadcast_announcement", { text: $("announce-text").value });
      if (!answer.ok) refusal("announcing", answer);
    });
    $("kick-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const sub = $("kick-sub").value.trim();
      const answer = await sso.call("admin:kick", { sub });
      if (answer.ok) log("kicked " + sub + ": " + answer.kicked + " connection(s)"); else refusal("kicking " + sub, answer);
    });
  }

  async function start() {
    const response = await fetch("/auth/me", { credentials: "same-origin", cache: "no-store" });
    if (response.status !== 200) {
      $("signed-out").hidden = false;
      setStatus("signed out");
      return;
    }
    const me = await response.json();
    $("signed-in").hidden = false;
    showMe(me);
    wire(me);
  }

  start();
})();
