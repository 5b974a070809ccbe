// The chat page on @switchboard/client's ChatRoom: it resumes with ?since=<last seq shown>,
// resends what the server has not acknowledged (same client_id, stored once) and shows
// every stored message once, in seq order; this file only draws.
(function () {
  const root = document.querySelector(".chat");
  const room = root.dataset.room;
  const me = root.dataset.username;
  const log = document.getElementById("chat-log");
  const input = document.getElementById("chat-message-input");
  const pendingEls = new Map(); // client_id -> its line, shown greyed until stored

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
  function system(text) { line("message system-message").textContent = text; }

  const chat = Switchboard.chatRoom(room);
  Switchboard.showStatus(chat, document.getElementById("status"), "ready");
  chat.on("message", (msg) => {
    const pending = msg.client_id && msg.user === me && pendingEls.get(msg.client_id);
    let div;
    if (pending) {
      pendingEls.delete(msg.client_id);
      div = pending;
      div.classList.remove("pending");
      log.appendChild(div); // its place is its seq
    } else {
      div = line("message");
    }
    div.dataset.seq = msg.seq;
    fill(div, msg.user, msg.message, msg.timestamp);
    log.scrollTop = log.scrollHeight;
  });
  chat.on("user_join", (f) => system(`${f.user} joined`));
  chat.on("user_leave", (f) => system(`${f.user} left`));
  chat.on("online_users", (f) => { document.getElementById("user-list").textContent = f.users.join(", "); });
  let typingTimer = null;
  chat.on("user_typing", (f) => {
    const el = document.getElementById("typing-indicator");
    el.textContent = `${f.user} is typing…`;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => { el.textContent = ""; }, 3000);
  });
  chat.on("error", (e) => { if (e.source === "server") system(`error: ${e.message}`); });

  document.getElementById("chat-form").onsubmit = (e) => {
    e.preventDefault();
    const message = input.value.trim();
    if (!message) return;
    const el = line("message pending");
    fill(el, me, message, null);
    pendingEls.set(chat.sendMessage(message), el);
    input.value = "";
  };
  let lastTyping = 0;
  input.addEventListener("input", () => {
    if (Date.now() - lastTyping > 1500) { lastTyping = Date.now(); chat.typing(); }
  });
})();
