// Fast typists on stock y-websocket providers (driven by tests-e2e/test_ws_security.py).
//
// <providers> WebsocketProviders of one user (one token: tabs of one person) each type
// <keys> characters, one every <interval> ms, and move their caret with each, as
// y-codemirror does: a keystroke is two frames, an update and an awareness update.
// Whatever the server does to a fast user, a stock client must not die of it (a text
// frame on a Yjs socket made y-websocket's decoder throw, uncaught in Node). Prints one
// JSON line: {"texts": [...], "closes": [close codes seen]} once all agree and are quiet.
//
// Usage: node fasttype.mjs <ws base url> <document id> <token> <providers> <interval ms> <keys>
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

const [base, docId, token, count, intervalArg, keysArg] = process.argv.slice(2)
const interval = Number(intervalArg)
const keys = Number(keysArg)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const closes = []

const deadline = Date.now() + 60_000
async function until (what, check) {
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what)
    await sleep(50)
  }
}

const clients = Array.from({ length: Number(count) }, (_, i) => {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(`${base}/ws/collab`, `${docId}/`, doc, {
    params: { token },
    WebSocketPolyfill: WebSocket,
    disableBc: true
  })
  provider.on('connection-close', (event) => { if (event) closes.push(event.code) })
  return { i, doc, provider, text: doc.getText('content') }
})

async function type (client) {
  for (let n = 0; n < keys; n++) {
    const at = client.text.length
    client.text.insert(at, String.fromCharCode(97 + ((client.i * 7 + n) % 26)))
    client.provider.awareness.setLocalStateField('cursor', { anchor: at + 1, head: at + 1 })
    await sleep(interval)
  }
}

await until('sync', () => clients.every((c) => c.provider.synced))
await Promise.all(clients.map(type))

const texts = () => clients.map((c) => c.text.toString())
let last = ''
let stableSince = Date.now()
await until('convergence', () => {
  const t = texts()
  const agree = t.every((x) => x === t[0]) && clients.every((c) => c.provider.synced)
  if (!agree || t[0] !== last) { last = t[0]; stableSince = Date.now(); return false }
  return Date.now() - stableSince > 1000
})
console.log(JSON.stringify({ texts: texts(), closes }))
for (const c of clients) c.provider.destroy()
process.exit(0)
