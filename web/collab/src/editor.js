// The collaborative editor page: a Y.Doc synced by y-websocket's stock WebsocketProvider
// over /ws/collab/<id>/, edited in CodeMirror 6 through y-codemirror.next, which also
// draws the other users' cursors and selections from the awareness protocol.
//
// The socket authenticates with the page's session cookie (ws-gateway accepts it from
// a browser Origin), so no token sits in the URL. Read-only users get a read-only
// editor; the server refuses their changes anyway.
//
// When to reconnect is the server's close-code table (closecodes.py, generated into
// clients/js), not y-websocket's own rule: a terminal code (4403 after the owner revoked
// the user's role, 4429 over the socket caps) stops the provider and the page says so.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { EditorView, basicSetup } from 'codemirror'
import { EditorState } from '@codemirror/state'
import { yCollab } from 'y-codemirror.next'
import { mayReconnect } from '../../../clients/js/src/index.js'

const COLORS = ['#d9480f', '#1971c2', '#2f9e44', '#ae3ec9', '#e8590c', '#0c8599', '#c2255c', '#5c940d']

function colorFor (name) {
  let h = 0
  for (const c of name) h = (h * 31 + c.codePointAt(0)) >>> 0
  return COLORS[h % COLORS.length]
}

async function start () {
  const root = document.getElementById('editor')
  const docId = root.dataset.document
  const username = root.dataset.username
  const status = document.getElementById('status')
  const people = document.getElementById('present')

  const res = await window.Switchboard.api(`/api/collab/documents/${docId}/`)
  if (!res.ok) {
    status.textContent = res.status === 403 ? 'not shared with you' : 'no such document'
    return
  }
  const meta = await res.json()
  document.getElementById('doc-title').textContent = meta.title
  document.getElementById('doc-role').textContent = meta.role === 'read' ? 'read only' : meta.role

  const ydoc = new Y.Doc()
  const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://'
  // roomname "<id>/" makes the URL /ws/collab/<id>/, the route's path.
  const provider = new WebsocketProvider(scheme + location.host + '/ws/collab', `${docId}/`, ydoc, {
    shouldReconnect: (event) => mayReconnect(event.code)
  })
  const color = colorFor(username)
  provider.awareness.setLocalStateField('user', { name: username, color, colorLight: color + '33' })

  provider.on('status', ({ status: s }) => { status.textContent = s === 'connected' ? 'live' : s })
  // Emitted after the last 'status': the provider will not reconnect by itself.
  provider.on('closed', ({ code }) => { status.textContent = `closed (${code})` })
  // Every close the page saw (null: closed by the provider itself), for tests and the curious.
  const closes = []
  provider.on('connection-close', (event) => { closes.push(event ? event.code : null) })
  provider.on('sync', (synced) => { root.dataset.synced = synced ? '1' : '0' })

  const renderPeople = () => {
    const names = new Set()
    for (const state of provider.awareness.getStates().values()) {
      if (state.user && state.user.name) names.add(state.user.name)
    }
    people.replaceChildren(...[...names].sort().map((name) => {
      const li = document.createElement('li')
      li.textContent = name
      li.style.borderColor = colorFor(name)
      return li
    }))
  }
  provider.awareness.on('change', renderPeople)
  renderPeople()

  const ytext = ydoc.getText('content')
  const view = new EditorView({
    parent: root,
    state: EditorState.create({
      doc: ytext.toString(),
      extensions: [
        basicSetup,
        EditorView.lineWrapping,
        EditorState.readOnly.of(meta.role === 'read'),
        yCollab(ytext, provider.awareness)
      ]
    })
  })
  // For tests and the curious: the live objects behind the page.
  window.collab = { ydoc, ytext, provider, view, closes }
}

start()
