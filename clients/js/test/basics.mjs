// Connects with each credential, and checks a terminal close code ends the client.
//   node test/basics.mjs <ws base url> <token>
// Prints one JSON line of what was seen.
import WebSocket from "ws";
import { connect, chatRoom } from "@switchboard/client";

const [baseUrl, token] = process.argv.slice(2);
const first = (conn, type) =>
  new Promise((resolve, reject) => {
    conn.once(type, resolve);
    conn.on("close", (e) => !e.willReconnect && reject(new Error(`closed ${e.code}`)));
  });
const out = {};

for (const auth of ["subprotocol", "query"]) {
  const bell = connect("notifications", {}, { baseUrl, token, auth, WebSocket });
  out[auth] = (await first(bell, "unread_count")).count;
  bell.close();
}

// A token from a function, asked for at every connect.
let asked = 0;
const tasks = connect("tasks", {}, { baseUrl, token: async () => (asked++, token), WebSocket });
await new Promise((r) => tasks.once("open", r));
tasks.drop();
await new Promise((r) => tasks.once("open", r));
out.tokenAsked = asked;
tasks.close();

// No such room: 4404 is terminal, so the client stops and never retries.
const missing = chatRoom("no-such-room-" + Date.now(), { baseUrl, token, WebSocket, backoff: { initialMs: 50 } });
const reconnects = [];
missing.on("reconnecting", (e) => reconnects.push(e));
out.missing = await new Promise((r) => missing.on("close", (e) => r(e)));
await new Promise((r) => setTimeout(r, 500));
out.missingReconnects = reconnects.length;
out.missingState = missing.state;

// A staff-only route for a user who is not staff: 4403, terminal (as a revoked collab
// role is): the client stops instead of reconnecting in a loop.
const forbidden = connect("dashboard", {}, { baseUrl, token, WebSocket, backoff: { initialMs: 50 } });
const forbiddenReconnects = [];
forbidden.on("reconnecting", (e) => forbiddenReconnects.push(e));
out.forbidden = await new Promise((r) => forbidden.on("close", (e) => r(e)));
await new Promise((r) => setTimeout(r, 500));
out.forbiddenReconnects = forbiddenReconnects.length;
out.forbiddenState = forbidden.state;

// No token at all: 4401, terminal.
const anon = connect("notifications", {}, { baseUrl, WebSocket, webSocketOptions: {} });
out.anonymous = await new Promise((r) => anon.on("close", (e) => r(e)));
console.log(JSON.stringify(out));
process.exit(0);
