// The chat page: history, online list, join/leave notices, typing, and no lost or
// doubled message across reconnects: it reconnects with ?since=<last seq seen> and
// resends what the server has not acknowledged (same client_id, stored once).
(function () {
  const root = document.querySelector(".chat");
  const room = root.dataset.room;
  const me = root.dataset.username;
  const log = document.getElementById("chat-log");
  const input = document.getElementById("chat-message-input");
  const status = document.getElementById("status");
  let lastSeq = null;            // highest seq rendered
  const unacked = new Map();     // client_id -> {message, el}

  function line(cls) {
    const div = document.createElement("div");
    div.className = cls;
    log.appendChild(div);
    log.scrollTop = log.scrollHeight;
    return div;
  }
  function fill(div, user, message, timestamp) {
    const who = document.createElement("strong");
    who.textContent = user;
    const time = document.createElement("span");
    time.className = "time";
    time.textContent = timestamp ? new Date(timestamp).toLocaleTimeString() : "…";
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = message;
    div.replaceChildren(who, time, text);
  }
  function render(msg) {
    if (lastSeq !== null && msg.seq <= lastSeq) return;   // already shown
    lastSeq = msg.seq;
    const pending = msg.client_id && unacked.get(msg.client_id);
    let div;
    if (pending && msg.user === me) {
      unacked.delete(msg.client_id);
      div = pending.el; div.classList.remove("pending");
      log.appendChild(div);                                 // its place is its seq
    } else {
      div = line("message");
    }
    div.dataset.seq = msg.seq;
    fill(div, msg.user, msg.message, msg.timestamp);
    log.scrollTop = log.scrollHeight;
  }
  function system(text) { line("message system-message").textContent = text; }

  let typingTimer = null;
  const socket = new Switchboard.Socket(`/ws/chat/${encodeURIComponent(room)}/`, {
    params: () => (lastSeq === null ? {} : {since: lastSeq}),
    onStatus: (s, code) => {
      status.textContent = s === "closed" ? `closed (${code})` : s;
      status.className = "status " + s;
      if (s === "live") for (const [client_id, p] of unacked) socket.send({type: "chat_message", message: p.message, client_id});
    },
    onFrame: (data) => {
      switch (data.type) {
        case "history": data.messages.forEach(render); break;
        case "chat_message": render(data); break;
        case "user_join": system(`${data.user} joined`); break;
        case "user_leave": system(`${data.user} left`); break;
        case "online_users": document.getElementById("user-list").textContent = data.users.join(", "); break;
        case "user_typing": {
          const el = document.getElementById("typing-indicator");
          el.textContent = `${data.user} is typing…`;
          clearTimeout(typingTimer);
          typingTimer = setTimeout(() => { el.textContent = ""; }, 3000);
          break;
        }
        case "error": system(`error: ${data.message}`); break;
      }
    },
  });

  document.getElementById("chat-form").onsubmit = (e) => {
    e.preventDefault();
    const message = input.value.trim();
    if (!message) return;
    const client_id = crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random();
    const el = line("message pending");
    fill(el, me, message, null);
    unacked.set(client_id, {message, el});
    socket.send({type: "chat_message", message, client_id});
    input.value = "";
  };
  let lastTyping = 0;
  input.addEventListener("input", () => {
    if (Date.now() - lastTyping > 1500) { lastTyping = Date.now(); socket.send({type: "typing"}); }
  });
})();
