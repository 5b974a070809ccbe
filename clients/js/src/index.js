// @switchboard/client: Switchboard's browser (and Node) client.
//
// Owns what an application needs to get Switchboard's guarantees: one socket to any route
// of gateway/routes.toml that reconnects by itself (exponential backoff with jitter,
// stopping only on the close codes closecodes.py calls terminal), typed events for every
// frame, and ChatRoom: resume with ?since=<last seq>, keep unacknowledged messages and
// resend them with their client_id, show every acknowledged message once, in seq order.
// The close-code table and the routes are generated (src/generated.js), never copied.

import { CLOSE_REASONS, CloseCode, ROUTES, TERMINAL_RANGES } from "./generated.js";

export { CLOSE_REASONS, CloseCode, ROUTES, TERMINAL_RANGES };

/** Whether the table says a client reconnects (with backoff) after this close code. */
export function mayReconnect(code) {
  return !TERMINAL_RANGES.some(([from, to]) => code >= from && code <= to);
}

/** Whether this code asks for a new token before reconnecting (see closecodes.py). */
export function isTokenExpired(code) {
  return CloseCode.TOKEN_EXPIRED !== undefined && code === CloseCode.TOKEN_EXPIRED;
}

/** The path of a route with its parameters: routePath("chat", {room: "lobby"}) is "/ws/chat/lobby/". */
export function routePath(name, params = {}) {
  const route = ROUTES[name];
  if (!route) throw new Error(`no WebSocket route ${JSON.stringify(name)} (one of ${Object.keys(ROUTES).join(", ")})`);
  return route.path.replace(/\{(\w+)\}/g, (_, key) => {
    if (params[key] === undefined || params[key] === null || params[key] === "") {
      throw new Error(`route ${name}: parameter ${key} is required`);
    }
    return encodeURIComponent(String(params[key]));
  });
}

function randomId() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID();
  const bytes = new Uint8Array(16);
  if (c && typeof c.getRandomValues === "function") c.getRandomValues(bytes);
  else for (let i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function defaultBaseUrl() {
  const loc = globalThis.location;
  if (!loc || !loc.host) throw new Error("baseUrl is required outside a browser page (e.g. ws://127.0.0.1:8080)");
  return (loc.protocol === "https:" ? "wss://" : "ws://") + loc.host;
}

/** A small typed event emitter: on() returns a function that removes the listener. */
class Emitter {
  constructor() {
    this._listeners = new Map();
  }
  on(type, fn) {
    if (!this._listeners.has(type)) this._listeners.set(type, new Set());
    this._listeners.get(type).add(fn);
    return () => this.off(type, fn);
  }
  once(type, fn) {
    const off = this.on(type, (ev) => {
      off();
      fn(ev);
    });
    return off;
  }
  off(type, fn) {
    const set = this._listeners.get(type);
    if (set) set.delete(fn);
  }
  emit(type, ev) {
    const set = this._listeners.get(type);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(ev);
      } catch (err) {
        // A listener's bug must not break the socket's bookkeeping; surface it.
        setTimeout(() => {
          throw err;
        });
      }
    }
  }
}

const DEFAULTS = {
  backoff: { initialMs: 500, maxMs: 30000, factor: 2, jitter: 0.5 },
  pingIntervalMs: 25000,
  pongTimeoutMs: 10000,
};

/**
 * One WebSocket to one route that reconnects by itself.
 *
 * States: "connecting" -> "open" -> ("reconnecting" -> "connecting" -> "open")* -> "closed".
 * "closed" only after close() or a terminal close code (4400-4499 today).
 */
export class Connection extends Emitter {
  constructor(route, params = {}, options = {}) {
    super();
    this.route = route;
    this.params = params;
    this.options = options;
    this.path = route.startsWith("/") ? route : routePath(route, params);
    this.backoff = { ...DEFAULTS.backoff, ...(options.backoff || {}) };
    this.state = "idle";
    this.attempt = 0;
    this.ws = null;
    this._token = options.token;
    this._timer = null;
    this._pingTimer = null;
    this._pongTimer = null;
    this._stopped = false;
    this._WebSocket = options.WebSocket || globalThis.WebSocket;
    if (!this._WebSocket) throw new Error("no WebSocket implementation: pass options.WebSocket (e.g. the ws package)");
  }

  /** Open the socket (connect() does this for you). */
  start() {
    if (this.state === "idle") this._open();
    return this;
  }

  async _currentToken() {
    const t = this._token;
    if (typeof t === "function") return await t();
    return t || null;
  }

  /** Extra query parameters for the next connect (ChatRoom adds since). */
  queryParams() {
    return typeof this.options.query === "function" ? this.options.query() : this.options.query || {};
  }

  async _open() {
    this._setState("connecting");
    let token;
    try {
      token = await this._currentToken();
    } catch (error) {
      this.emit("error", { source: "token", error });
      this._scheduleReconnect(null);
      return;
    }
    if (this._stopped) return;
    const auth = this.options.auth || (token ? "subprotocol" : "cookie");
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(this.queryParams())) if (v !== undefined && v !== null) query.set(k, String(v));
    if (auth === "query" && token) query.set("token", token);
    const qs = query.toString();
    const url = (this.options.baseUrl || defaultBaseUrl()).replace(/\/$/, "") + this.path + (qs ? "?" + qs : "");
    const protocols = auth === "subprotocol" && token ? ["bearer", token] : undefined;
    let ws;
    try {
      ws = this.options.webSocketOptions
        ? new this._WebSocket(url, protocols, this.options.webSocketOptions)
        : protocols
          ? new this._WebSocket(url, protocols)
          : new this._WebSocket(url);
    } catch (error) {
      this.emit("error", { source: "socket", error });
      this._scheduleReconnect(null);
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      if (ws !== this.ws) return;
      this._setState("open");
      this._armPing();
      this.emit("open", { attempt: this.attempt });
      this.onOpen();
    };
    ws.onmessage = (e) => {
      if (ws !== this.ws) return;
      this._sawTraffic();
      if (typeof e.data !== "string") {
        this.emit("binary", { data: e.data });
        return;
      }
      let frame;
      try {
        frame = JSON.parse(e.data);
      } catch (error) {
        this.emit("error", { source: "parse", error });
        return;
      }
      this._dispatch(frame);
    };
    ws.onerror = (e) => {
      if (ws !== this.ws) return;
      this.emit("error", { source: "socket", error: e && (e.error || e.message || e) });
    };
    ws.onclose = (e) => {
      if (ws !== this.ws) return;
      this.ws = null;
      this._disarmPing();
      this._closed(e.code, e.reason || "");
    };
  }

  /** A frame from the server: its own event, then "frame". */
  _dispatch(frame) {
    // The first frame after open means the service accepted: a healthy connection.
    if (this.attempt && this.state === "open") this.resetBackoff();
    if (frame.type === "pong") return;
    if (frame.type === "error") {
      this.emit("error", {
        source: "server",
        code: frame.code,
        message: frame.message,
        retryAfter: frame.retry_after,
        frame,
      });
    } else {
      this.emit(frame.type, frame);
    }
    this.emit("frame", frame);
  }

  async _closed(code, reason) {
    const wasStopped = this._stopped;
    if (wasStopped) {
      this._setState("closed");
      this.emit("close", { code, reason, willReconnect: false });
      return;
    }
    if (isTokenExpired(code) && this.options.refreshToken) {
      this.emit("close", { code, reason, willReconnect: true });
      try {
        this._token = await this.options.refreshToken();
      } catch (error) {
        this.emit("error", { source: "token", error });
      }
      this._scheduleReconnect(code);
      return;
    }
    if (!mayReconnect(code)) {
      this._stopped = true;
      this._setState("closed");
      this.emit("close", { code, reason, willReconnect: false });
      this.emit("error", { source: "close", code, message: reason || CLOSE_REASONS[code] || "closed" });
      return;
    }
    this.emit("close", { code, reason, willReconnect: true });
    this._scheduleReconnect(code);
  }

  /** The delay before the next attempt: factor^attempt, capped, with jitter (full below the cap). */
  nextDelay() {
    const { initialMs, maxMs, factor, jitter } = this.backoff;
    const base = Math.min(maxMs, initialMs * factor ** this.attempt);
    return Math.round(base * (1 - jitter + jitter * Math.random()));
  }

  _scheduleReconnect(code) {
    if (this._stopped) return;
    const delay = this.nextDelay();
    this.attempt += 1;
    this._setState("reconnecting");
    this.emit("reconnecting", { attempt: this.attempt, delayMs: delay, code });
    clearTimeout(this._timer);
    this._timer = setTimeout(() => {
      if (!this._stopped) this._open();
    }, delay);
  }

  /** Called when the socket opened; subclasses resume here. */
  onOpen() {}

  /** The connection counts as healthy again: backoff restarts from its first step. */
  resetBackoff() {
    this.attempt = 0;
  }

  _setState(state) {
    this.state = state;
    this.emit("state", { state });
  }

  _armPing() {
    const every = this.options.pingIntervalMs ?? DEFAULTS.pingIntervalMs;
    if (!every) return;
    clearInterval(this._pingTimer);
    this._pingTimer = setInterval(() => {
      if (!this.send({ type: "ping" })) return;
      clearTimeout(this._pongTimer);
      // No frame at all within the timeout: the TCP path is dead (no FIN arrived); drop it.
      this._pongTimer = setTimeout(() => this.drop(), this.options.pongTimeoutMs ?? DEFAULTS.pongTimeoutMs);
    }, every);
  }

  _sawTraffic() {
    clearTimeout(this._pongTimer);
  }

  _disarmPing() {
    clearInterval(this._pingTimer);
    clearTimeout(this._pongTimer);
  }

  /** Send one JSON frame; false when the socket is not open (nothing is queued here). */
  send(frame) {
    const ws = this.ws;
    if (!ws || ws.readyState !== 1 || this.state !== "open") return false;
    ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
    return true;
  }

  /** Send a binary frame (collab's Yjs route). */
  sendBinary(data) {
    const ws = this.ws;
    if (!ws || ws.readyState !== 1) return false;
    ws.send(data);
    return true;
  }

  /** Abandon the current socket as if the network dropped it; the client reconnects. */
  drop() {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    this._disarmPing();
    try {
      ws.close(4000);
    } catch {
      /* already closing */
    }
    this._closed(1006, "dropped by the client");
  }

  /** Close for good (code 1000): no reconnect. */
  close() {
    this._stopped = true;
    clearTimeout(this._timer);
    this._disarmPing();
    const ws = this.ws;
    if (ws) {
      try {
        ws.close(1000);
      } catch {
        /* already closing */
      }
    } else if (this.state !== "closed") {
      this._setState("closed");
      this.emit("close", { code: 1000, reason: "closed by the client", willReconnect: false });
    }
  }
}

/** Connect to a route: connect("notifications", {}, {token}) or connect("chat", {room}, ...). */
export function connect(route, params = {}, options = {}) {
  return new Connection(route, params, options).start();
}

/**
 * A chat room with the chat route's guarantees.
 *
 * Events (besides Connection's): "message" for each acknowledged message, exactly once and
 * in seq order (from history or live); "ack" {client_id, seq} when one of ours is stored;
 * "pending" {pending} whenever the unacknowledged set changes; "gap" {after, before} when
 * the server said history was truncated and the gap could not be read over REST.
 */
// Error frames after which a chat message was not stored and may be sent again.
const RETRY_ERRORS = new Set(["rate_limited", "busy", "internal_error"]);

export class ChatRoom extends Connection {
  constructor(room, options = {}) {
    super("chat", { room }, options);
    this.room = room;
    this.lastSeq = options.since ?? null;
    this.pending = new Map(); // client_id -> message text, in send order
    this.ready = false;
    this._chain = Promise.resolve();
    this._resendTimer = null;
    this.on("close", () => {
      this.ready = false;
      clearTimeout(this._resendTimer);
      this._resendTimer = null;
    });
  }

  // Frames are handled one after the other, even while history's gap is read over REST,
  // so a live message never overtakes the history before it.
  _dispatch(frame) {
    this._chain = this._chain
      .then(async () => {
        if (frame.type === "history") await this._history(frame);
        else if (frame.type === "chat_message") this._message(frame);
        else if (frame.type === "error" && RETRY_ERRORS.has(frame.code)) this._resendSoon(frame.retry_after);
        super._dispatch(frame);
        if (frame.type === "history") {
          this._resend();
          this.emit("ready", { lastSeq: this.lastSeq, pending: this.pending.size });
        }
      })
      .catch((error) => this.emit("error", { source: "client", error }));
  }

  queryParams() {
    return this.lastSeq === null ? {} : { since: this.lastSeq };
  }

  onOpen() {
    // Frames are relayed only after the room's service accepted: history says it did.
    this.ready = false;
  }

  async _history(frame) {
    const messages = [...frame.messages].sort((a, b) => a.seq - b.seq);
    if (frame.truncated && this.lastSeq !== null && messages.length) {
      await this._fillGap(this.lastSeq, messages[0].seq);
    }
    for (const m of messages) this._message(m);
    // An empty room: resume after what the server has (a reconnect asks for since=0+).
    if (this.lastSeq === null) this.lastSeq = frame.last_seq;
    this.ready = true;
  }

  // A refused message (rate_limited, busy, internal_error) was not stored; the error
  // frame does not say which, so everything pending goes again (stored once by client_id).
  _resendSoon(retryAfter) {
    if (this._resendTimer) return;
    const ms = Math.max(100, Math.round((retryAfter ?? 1) * 1000));
    this._resendTimer = setTimeout(() => {
      this._resendTimer = null;
      if (this.ready && this.state === "open") this._resend();
    }, ms);
  }

  _resend() {
    // Everything not acknowledged by now was lost with the old socket (or never sent):
    // resend with the same client_id; the server stores a client_id once.
    for (const [client_id, message] of this.pending) this.send({ type: "chat_message", message, client_id });
  }

  async _fillGap(after, before) {
    const fetchFn = this.options.fetch || globalThis.fetch;
    const httpBase = this.options.httpBaseUrl || (this.options.baseUrl || defaultBaseUrl()).replace(/^ws/, "http");
    let token = null;
    try {
      token = await this._currentToken();
    } catch {
      /* reported on connect */
    }
    let cursor = after;
    try {
      while (cursor < before - 1) {
        const url = `${httpBase}/api/chat/rooms/${encodeURIComponent(this.room)}/messages/?after=${cursor}&limit=200`;
        const res = await fetchFn(url, {
          headers: token ? { Authorization: `Bearer ${token}` } : {},
          credentials: "same-origin",
        });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const body = await res.json();
        const page = body.messages.filter((m) => m.seq < before).sort((a, b) => a.seq - b.seq);
        for (const m of page) this._message(m);
        if (!page.length || !body.has_more) break;
        cursor = page[page.length - 1].seq;
      }
    } catch (error) {
      this.emit("gap", { after: cursor, before, error });
    }
  }

  _message(m) {
    if (m.client_id && this.pending.has(m.client_id)) {
      this.pending.delete(m.client_id);
      this.emit("ack", { client_id: m.client_id, seq: m.seq });
      this.emit("pending", { pending: this.pending.size });
    }
    if (this.lastSeq !== null && m.seq <= this.lastSeq) return; // already shown
    this.lastSeq = m.seq;
    this.emit("message", m);
  }

  /** Send a message; returns its client_id. Kept until its echo (with seq) arrives. */
  sendMessage(message, client_id = randomId()) {
    this.pending.set(client_id, message);
    this.emit("pending", { pending: this.pending.size });
    if (this.ready) this.send({ type: "chat_message", message, client_id });
    return client_id;
  }

  /** Tell the room the user is typing (not kept: a lost one does not matter). */
  typing() {
    return this.ready && this.send({ type: "typing" });
  }
}

/** Open a chat room: chatRoom("lobby", {token}). */
export function chatRoom(room, options = {}) {
  return new ChatRoom(room, options).start();
}
