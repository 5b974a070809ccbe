// Convergence of stock Yjs clients against Switchboard (driven by tests-e2e/test_collab_node.py).
//
// Three Y.Docs, each with y-websocket's WebsocketProvider (the `ws` package as its
// WebSocket), edit one document with random concurrent inserts and deletes; then one
// goes offline and keeps editing while the others do too, and reconnects. Prints one
// JSON line: {"texts": [...], "awareness": [...]} once all three agree and are quiet.
//
// Usage: node converge.mjs <ws base url> <document id> <token>,<token>,<token> [seed]
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

const [base, docId, tokenList, seedArg] = process.argv.slice(2)
const tokens = tokenList.split(',')
let seed = Number(seedArg || 1)
const random = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 }
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const deadline = Date.now() + 90_000
async function until (what, check) {
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what)
    await sleep(50)
  }
}

const clients = tokens.map((token, i) => {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(`${base}/ws/collab`, `${docId}/`, doc, {
    params: { token },
    WebSocketPolyfill: WebSocket,
    disableBc: true // separate processes in real life: no shortcut through BroadcastChannel
  })
  provider.awareness.setLocalStateField('user', { name: `node-${i}` })
  provider.on('connection-close', (event) => {
    if (event && event.code >= 4400 && event.code < 4500) {
      console.error(`client ${i} refused with ${event.code}`)
      process.exit(3)
    }
  })
  return { i, doc, provider, text: doc.getText('content') }
})

async function edits (client, count, tag, pause) {
  for (let n = 0; n < count; n++) {
    const size = client.text.length
    if (size > 5 && random() < 0.35) {
      const at = Math.floor(random() * size)
      client.text.delete(at, Math.min(size - at, 1 + Math.floor(random() * 3)))
    } else {
      client.text.insert(Math.floor(random() * (size + 1)), `${tag}${n};`)
    }
    await sleep(pause * (0.5 + random()))
  }
}

await until('sync', () => clients.every((c) => c.provider.synced))
// Round 1: all three at once.
await Promise.all(clients.map((c) => edits(c, 20, 'n' + c.i + '.', 150)))
// Round 2: client 2 goes offline and keeps editing; the others go on too.
const offline = clients[2]
offline.provider.disconnect()
await Promise.all([edits(clients[0], 10, 'x', 150), edits(clients[1], 10, 'y', 150), edits(offline, 15, 'off', 30)])
offline.text.insert(offline.text.length, '<offline-mark>')
offline.provider.connect()
await until('resync', () => offline.provider.synced)

// Agreement, then a quiet second in which nothing changes.
const texts = () => clients.map((c) => c.text.toString())
let last = ''
let stableSince = Date.now()
await until('convergence', () => {
  const t = texts()
  const agree = t.every((x) => x === t[0])
  if (!agree || t[0] !== last) { last = t[0]; stableSince = Date.now(); return false }
  return Date.now() - stableSince > 1000
})
// Each client sees the other two in awareness (their cursors and names).
const awareness = clients.map((c) =>
  [...c.provider.awareness.getStates().values()].map((s) => s.user && s.user.name).filter(Boolean).sort())
console.log(JSON.stringify({ texts: texts(), awareness }))
for (const c of clients) c.provider.destroy()
process.exit(0)
