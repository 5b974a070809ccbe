// A chat room client (alice) sends while its connection is dropped, and a watcher (bob)
// reads the room. Prints one JSON line: what each showed and what alice sent.
//   node test/drop.mjs <ws base url> <room> <alice token> <bob token> <tcp|kill> <count>
// tcp: the client's TCP connection is destroyed under it after a third of the sends;
// kill: prints {"event": "sending"} and keeps sending slowly while the test kills the
// gateways (fleet.kill), then waits for the reconnect.
import WebSocket from "ws";
import { chatRoom } from "@switchboard/client";

const [baseUrl, room, aliceToken, bobToken, mode, countArg] = process.argv.slice(2);
const count = Number(countArg);
const options = (token) => ({ baseUrl, token, WebSocket, backoff: { initialMs: 100, maxMs: 1000 } });

function ready(r) {
  return new Promise((resolve) => r.once("ready", resolve));
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const alice = chatRoom(room, options(aliceToken));
const bob = chatRoom(room, options(bobToken));
const shown = { alice: [], bob: [] };
alice.on("message", (m) => shown.alice.push(m.seq));
bob.on("message", (m) => shown.bob.push(m.seq));
let closes = 0;
let pendingAtDrop = null;
alice.on("close", () => {
  closes += 1;
  if (pendingAtDrop === null) pendingAtDrop = alice.pending.size;
});
await Promise.all([ready(alice), ready(bob)]);
// Each later "ready" is a reconnect: what is pending then is resent on the new socket.
let resent = 0;
alice.on("ready", (e) => (resent += e.pending));

const sent = [];
const gap = mode === "kill" ? 40 : 5;
for (let i = 0; i < count; i++) {
  sent.push(alice.sendMessage(`m${i}`));
  if (mode === "tcp" && i === Math.floor(count / 3)) {
    // Mid-send: some frames are in the socket's buffer, some acknowledged, some not.
    pendingAtDrop = alice.pending.size;
    alice.ws._socket.destroy();
  }
  if (mode === "kill" && i === 3) console.log(JSON.stringify({ event: "sending" }));
  await sleep(gap);
}

const deadline = Date.now() + 60000;
while ((alice.pending.size || shown.bob.length < count) && Date.now() < deadline) await sleep(50);
await sleep(300); // anything stored twice would be echoed by now
alice.close();
bob.close();
console.log(
  JSON.stringify({ sent, shown, closes, pendingAtDrop, resent, pendingLeft: alice.pending.size, lastSeq: alice.lastSeq }),
);
process.exit(0);
