// The staff dashboard page: live counters from initial_stats / stats_update, a plain
// SVG chart of orders and chat messages per minute, the latest orders (new_order) and
// alerts as they come (alert). On every (re)connect it reloads the latest orders and
// alerts over REST, so nothing pushed while the socket was down is missing; rows are
// keyed by id, so a row seen twice is shown once. Text is set with textContent only:
// alert messages come from outside (Alertmanager labels) and must never become markup.
(function () {
  const MAX_ORDERS = 15, MAX_ALERTS = 50;
  const $ = (id) => document.getElementById(id);
  const status = $("status");
  const seenOrders = new Set(), seenAlerts = new Set();
  const SVG = "http://www.w3.org/2000/svg";

  const fmt = (v) => (v === null || v === undefined ? "?" : String(v));
  const time = (iso) => new Date(iso).toLocaleTimeString();

  // No stats for three intervals while the socket is up means no publisher is
  // running: say so, rather than show old figures as if they were live.
  let lastStatsAt = 0, statsInterval = 5;
  setInterval(() => {
    const stale = lastStatsAt && Date.now() - lastStatsAt > 3 * statsInterval * 1000;
    $("updated").classList.toggle("warn", Boolean(stale));
    if (stale) $("updated").textContent = `stale: no update since ${new Date(lastStatsAt).toLocaleTimeString()}`;
  }, 1000);

  function showStats(s) {
    lastStatsAt = Date.now();
    statsInterval = s.interval_seconds || statsInterval;
    $("stat-online-users").textContent = fmt(s.online_users);
    $("stat-total-users").textContent = fmt(s.total_users);
    $("stat-today-orders").textContent = fmt(s.today_orders);
    $("stat-today-revenue").textContent = fmt(s.today_revenue);
    $("stat-reports-running").textContent = s.reports_available ? fmt(s.report_tasks_running) : "0 (n/a)";
    $("stat-connections").textContent = fmt(s.connections);
    $("stat-routes").textContent = Object.entries(s.connections_by_route || {})
      .filter(([, n]) => n > 0).map(([r, n]) => `${r} ${n}`).join(" · ");
    $("updated").textContent = "updated " + time(s.computed_at);
    const down = s.unavailable || [];
    $("unavailable").hidden = down.length === 0;
    $("unavailable").textContent = down.length ? `Unavailable right now: ${down.join(", ")} (shown as ?)` : "";
    drawChart(s.series);
  }

  function el(name, attrs, text) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  let lastSeries = null;
  // Drawn in the element's own pixels (viewBox = its size), so text is never stretched.
  window.addEventListener("resize", () => drawChart(lastSeries));

  function drawChart(series) {
    const svg = $("chart");
    if (!series) return;
    lastSeries = series;
    const W = Math.max(200, svg.clientWidth || 600), H = 180, top = 10, bottom = 20, left = 28;
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const orders = series.orders.map((v) => v || 0);
    const messages = series.messages;
    const n = orders.length;
    const max = Math.max(1, ...orders, ...messages.map((v) => v || 0));
    const x = (i) => left + (i + 0.5) * (W - left) / n;
    const y = (v) => H - bottom - (v / max) * (H - top - bottom);
    const bw = Math.max(2, (W - left) / n * 0.6);
    const nodes = [el("line", {class: "axis", x1: left, x2: W, y1: H - bottom, y2: H - bottom}),
      el("text", {x: 0, y: top + 8}, String(max)), el("text", {x: 0, y: H - bottom}, "0")];
    orders.forEach((v, i) => {
      if (v > 0) nodes.push(el("rect", {class: "bar", x: x(i) - bw / 2, y: y(v), width: bw, height: H - bottom - y(v)},));
    });
    // The messages line has gaps where the minute is unknown (null), never a fake zero.
    let path = "", pen = false;
    messages.forEach((v, i) => {
      if (v === null || v === undefined) { pen = false; return; }
      path += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)} `; pen = true;
    });
    if (path) nodes.push(el("path", {class: "line", d: path}));
    // A dot per known minute, so a lone minute between two unknown ones still shows.
    messages.forEach((v, i) => {
      if (v !== null && v !== undefined) nodes.push(el("circle", {class: "dot", cx: x(i), cy: y(v), r: 2.5}));
    });
    const start = new Date(series.start);
    [[0, "start"], [Math.floor(n / 2), "middle"], [n - 1, "end"]].forEach(([i, anchor]) => {
      const t = new Date(start.getTime() + i * series.step_seconds * 1000);
      const label = t.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
      nodes.push(el("text", {x: x(i), y: H - 5, "text-anchor": anchor}, label));
    });
    svg.replaceChildren(...nodes);
  }

  function addOrder(o, fresh) {
    if (seenOrders.has(o.id)) return;
    seenOrders.add(o.id);
    const tr = document.createElement("tr");
    tr.dataset.id = o.id;
    for (const text of [`#${o.id}`, o.user, o.total, o.status, time(o.created)]) {
      const td = document.createElement("td"); td.textContent = text; tr.appendChild(td);
    }
    if (fresh) tr.classList.add("fresh");
    const body = $("orders");
    // Newest first, by id: a REST reload and a pushed frame may arrive in either order.
    const after = [...body.children].find((row) => Number(row.dataset.id) < o.id);
    body.insertBefore(tr, after || null);
    while (body.children.length > MAX_ORDERS) body.lastElementChild.remove();
  }

  function addAlert(a, fresh) {
    if (seenAlerts.has(a.id)) return;
    seenAlerts.add(a.id);
    const li = document.createElement("li");
    li.dataset.id = a.id;
    li.classList.add(a.level);
    if (a.status === "resolved") li.classList.add("resolved");
    const level = document.createElement("strong"); level.textContent = a.level + " ";
    const text = document.createElement("span"); text.className = "text"; text.textContent = a.message;
    const when = document.createElement("span"); when.className = "time"; when.textContent = time(a.created);
    li.append(level, text, when);
    if (fresh) li.classList.add("fresh");
    const list = $("alerts");
    const after = [...list.children].find((row) => Number(row.dataset.id) < a.id);
    list.insertBefore(li, after || null);
    while (list.children.length > MAX_ALERTS) list.lastElementChild.remove();
  }

  async function reload() {
    try {
      const [orders, alerts] = await Promise.all([
        Switchboard.api("/api/orders/?limit=" + MAX_ORDERS).then((r) => r.json()),
        Switchboard.api("/api/dashboard/alerts/?limit=" + MAX_ALERTS).then((r) => r.json()),
      ]);
      (orders.orders || []).forEach((o) => addOrder(o, false));
      (alerts.alerts || []).forEach((a) => addAlert(a, false));
    } catch (e) {
      $("unavailable").hidden = false;
      $("unavailable").textContent = "Could not load the latest orders and alerts; retrying on reconnect.";
    }
  }

  const socket = Switchboard.connect("dashboard");
  Switchboard.showStatus(socket, status);
  socket.on("open", reload);
  socket.on("initial_stats", (f) => showStats(f.data));
  socket.on("stats_update", (f) => showStats(f.data));
  socket.on("new_order", (f) => addOrder(f.order, true));
  socket.on("alert", (f) => addAlert(f, true));

  $("alert-form").onsubmit = async (e) => {
    e.preventDefault();
    const message = $("alert-message").value.trim();
    if (!message) return;
    const res = await Switchboard.api("/api/dashboard/alerts/", {
      method: "POST", body: JSON.stringify({level: $("alert-level").value, message}),
    });
    const body = await res.json();
    $("alert-error").textContent = res.ok ? "" : body.message;
    if (res.ok) $("alert-message").value = "";
  };
})();
