// The web UI's bundle (make web -> services/ws_gateway/static/ws_gateway/dist/switchboard.js):
// @switchboard/client for the pages, plus what only the pages need: a bearer token for
// REST calls from the session cookie, and a status line that follows a connection.
// The sockets themselves use the session cookie (same origin), so no token is in a URL.
import * as client from "../src/index.js";

let tokenCache = null;

async function token() {
  if (tokenCache && tokenCache.until > Date.now()) return tokenCache.access;
  const res = await fetch("/api/auth/session-token/", { credentials: "same-origin" });
  if (res.status === 401) {
    location.href = "/login/?next=" + encodeURIComponent(location.pathname);
    return null;
  }
  const body = await res.json();
  tokenCache = { access: body.access, until: Date.now() + (body.expires_in - 60) * 1000 };
  return body.access;
}

async function api(path, options = {}) {
  const headers = {
    "Content-Type": "application/json",
    Authorization: "Bearer " + (await token()),
    ...(options.headers || {}),
  };
  return fetch(path, { ...options, headers });
}

// Shows a connection's state in `el` ("connecting", "live", "reconnecting", "closed (4403)");
// `liveOn` is the event after which it is live (a chat room: its history).
function showStatus(conn, el, liveOn = "open") {
  if (!el) return;
  const set = (text, cls) => {
    el.textContent = text;
    el.className = "status " + cls;
  };
  conn.on(liveOn, () => set("live", "live"));
  conn.on("reconnecting", () => set("reconnecting", "reconnecting"));
  conn.on("close", (e) => {
    if (!e.willReconnect) set(`closed (${e.code})`, "closed");
  });
  set("connecting", "connecting");
}

// A URL from the server as a link target, or null: only a path on this site or an
// http(s) URL (the server refuses anything else; rows stored before it did may hold
// javascript: or data: URLs, which must never become a clickable link).
function safeLink(url) {
  if (typeof url !== "string" || !url || /[\s\\]/.test(url)) return null;
  if (url.startsWith("/") && !url.startsWith("//")) return url;
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

globalThis.Switchboard = { ...client, api, token, showStatus, safeLink };
