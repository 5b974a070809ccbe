// Switchboard's browser client: a WebSocket that reconnects by itself, and the REST helper.
// Close codes 4400-4499 are terminal (log in again, pick another room); any other
// close reconnects with jittered exponential backoff (docs/protocol.md, "Close codes").
(function () {
  let tokenCache = null;

  async function token() {
    if (tokenCache && tokenCache.until > Date.now()) return tokenCache.access;
    const res = await fetch("/api/auth/session-token/", {credentials: "same-origin"});
    if (res.status === 401) { location.href = "/login/?next=" + encodeURIComponent(location.pathname); return null; }
    const body = await res.json();
    tokenCache = {access: body.access, until: Date.now() + (body.expires_in - 60) * 1000};
    return body.access;
  }

  async function api(path, options = {}) {
    const headers = {"Content-Type": "application/json", Authorization: "Bearer " + await token(), ...(options.headers || {})};
    return fetch(path, {...options, headers});
  }

  class Socket {
    // path: "/ws/chat/lobby/"; params(): query parameters for the next (re)connect.
    constructor(path, {onFrame, onStatus, params} = {}) {
      this.path = path; this.onFrame = onFrame || (() => {}); this.onStatus = onStatus || (() => {});
      this.params = params || (() => ({}));
      this.attempt = 0; this.stopped = false; this.ws = null;
      this.open();
    }
    open() {
      const q = new URLSearchParams(this.params()).toString();
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      this.ws = new WebSocket(scheme + location.host + this.path + (q ? "?" + q : ""));
      this.onStatus("connecting");
      this.ws.onopen = () => { this.attempt = 0; this.onStatus("live"); };
      this.ws.onmessage = (e) => { if (typeof e.data === "string") this.onFrame(JSON.parse(e.data)); };
      this.ws.onclose = (e) => {
        if (this.stopped) return;
        if (e.code >= 4400 && e.code <= 4499) { this.onStatus("closed", e.code); return; }
        const delay = Math.min(30000, 500 * 2 ** this.attempt++) * (0.5 + Math.random() / 2);
        this.onStatus("reconnecting", e.code);
        setTimeout(() => this.open(), delay);
      };
    }
    send(frame) {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) { this.ws.send(JSON.stringify(frame)); return true; }
      return false;
    }
    close() { this.stopped = true; if (this.ws) this.ws.close(1000); }
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
    } catch (e) {
      return null;
    }
  }

  window.Switchboard = {api, token, Socket, safeLink};
})();
