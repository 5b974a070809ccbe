// The notification bell on every page: the unread count from /ws/notifications/ (the
// same number in every tab, pushed by the notification service), the latest
// notifications in a panel, mark one or all read.
(function () {
  const count = document.getElementById("bell-count");
  const panel = document.getElementById("bell-panel");
  const list = document.getElementById("bell-list");
  if (!count) return;
  const socket = Switchboard.connect("notifications");
  socket.on("unread_count", (f) => {
    count.textContent = f.count;
    count.dataset.unread = f.count > 0 ? "yes" : "no";
  });
  socket.on("notification", (f) => {
    list.prepend(item(f));
    while (list.children.length > 20) list.lastChild.remove();
  });
  function item(n) {
    const li = document.createElement("li");
    li.dataset.id = n.id;
    const link = Switchboard.safeLink(n.url);
    const title = document.createElement(link ? "a" : "span");
    if (link) title.href = link;
    title.textContent = n.title;
    const msg = document.createElement("div");
    msg.className = "bell-msg";
    msg.textContent = n.message;
    li.append(title, msg);
    if (!n.is_read) {
      li.className = "unread";
      li.addEventListener("click", () => { socket.send({type: "mark_read", notification_id: n.id}); li.className = ""; });
    }
    return li;
  }
  document.getElementById("bell").addEventListener("click", async () => {
    panel.hidden = !panel.hidden;
    if (panel.hidden) return;
    const res = await Switchboard.api("/api/notifications/?limit=20");
    if (!res.ok) return;
    list.replaceChildren(...(await res.json()).notifications.map(item));
  });
  document.getElementById("bell-read-all").addEventListener("click", () => {
    socket.send({type: "mark_all_read"});
    for (const li of list.children) li.className = "";
  });
})();
