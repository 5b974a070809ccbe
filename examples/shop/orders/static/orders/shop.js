// The shop page's live parts, each one socket of the browser client (@switchboard/client,
// loaded as window.Switchboard): the user's notifications, their order chat room, the
// progress of their reports and, for staff, the dashboard's new orders. Every connect
// (and reconnect) asks the shop for a fresh token; Switchboard knows the user by it.
(function () {
  const config = JSON.parse(document.getElementById("switchboard-config").textContent);
  const options = {
    baseUrl: config.wsUrl,
    token: async () => {
      const res = await fetch(config.tokenUrl, { credentials: "same-origin" });
      if (!res.ok) throw new Error(`the shop gave no token (${res.status})`);
      return res.text();
    },
  };
  const $ = (id) => document.getElementById(id);

  function add(list, text, className) {
    const li = document.createElement("li");
    li.textContent = text;
    if (className) li.className = className;
    list.append(li);
    return li;
  }
  // data-state on each panel says whether its socket is open (and tests wait for it).
  function track(socket, element) {
    socket.on("state", ({ state }) => (element.dataset.state = state));
  }

  // Notifications: the unread count on connect and after each change, then each new one.
  const bell = Switchboard.connect("notifications", {}, options);
  track(bell, $("unread"));
  bell.on("unread_count", (f) => ($("unread").textContent = `(${f.count} unread)`));
  bell.on("notification", (f) => add($("notifications"), `${f.title}: ${f.message}`));

  // The order chat room: every stored message once, in order, resumed after a drop.
  const room = Switchboard.chatRoom(config.room, options);
  track(room, $("chat"));
  room.on("message", (m) => add($("chat"), `${m.user}: ${m.message}`, m.system ? "system" : ""));
  $("chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = event.target.elements.message;
    if (input.value.trim()) room.sendMessage(input.value.trim());
    input.value = "";
  });

  // Reports: one line per task, updated by each task_update of this user's tasks only.
  const tasks = Switchboard.connect("tasks", {}, options);
  track(tasks, $("tasks"));
  tasks.on("task_update", (f) => {
    const id = `task-${f.task_id}`;
    const li = $(id) || add($("tasks"), "");
    li.id = id;
    li.dataset.status = f.status;
    li.textContent = `${f.status} ${f.progress}%: ${f.message}`;
  });

  // The order and report forms post in the background, so this page and its sockets stay.
  for (const form of document.querySelectorAll("form[data-post]")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const res = await fetch(form.action, { method: "POST", body: new FormData(form) });
      const answer = await res.json();
      $("status").textContent = answer.message;
      if (answer.order) $("my-orders").prepend(add($("my-orders"), answer.order));
    });
  }

  // Staff: the dashboard's new orders, as the shop pushed them.
  if (config.staff) {
    const dashboard = Switchboard.connect("dashboard", {}, options);
    track(dashboard, $("live-orders"));
    dashboard.on("new_order", ({ order }) => {
      const li = add($("live-orders"), `#${order.id} ${order.user}: ${order.total}`);
      li.dataset.order = order.id;
    });
  }
})();
