// The reports page: request a report over REST, then watch task_update frames on
// /ws/tasks/ move its progress bar; the file downloads with the bearer token (the
// download is for its owner only). On (re)connect the list is read over REST, so a
// task that moved while the socket was down shows its real state.
(function () {
  const rows = new Map();
  const body = document.getElementById("reports");
  const form = document.getElementById("report-form");
  const error = document.getElementById("report-error");

  function row(taskId, label) {
    let r = rows.get(taskId);
    if (r) return r;
    const tr = document.createElement("tr");
    tr.dataset.task = taskId;
    tr.innerHTML = '<td class="name"></td><td><progress max="100" value="0"></progress> <span class="pct">0 %</span></td>' +
      '<td class="state"></td><td class="link"></td>';
    tr.querySelector(".name").textContent = label;
    body.prepend(tr);
    r = {tr, bar: tr.querySelector("progress"), pct: tr.querySelector(".pct"), state: tr.querySelector(".state"), link: tr.querySelector(".link")};
    rows.set(taskId, r);
    return r;
  }

  function show(taskId, label, status, progress, message, result) {
    const r = row(taskId, label);
    r.bar.value = progress;
    r.pct.textContent = progress + " %";
    r.state.textContent = status + (message ? ": " + message : "");
    r.tr.dataset.status = status;
    if (status === "completed" && result && result.url && !r.link.firstChild) {
      const a = document.createElement("a");
      a.href = result.url;
      a.textContent = "Download " + (result.filename || "");
      a.className = "download";
      a.addEventListener("click", (e) => { e.preventDefault(); download(result.url, result.filename || "report"); });
      r.link.append(a);
    }
  }

  async function download(url, filename) {
    const res = await Switchboard.api(url);
    if (!res.ok) { error.textContent = "download failed (" + res.status + ")"; return; }
    const blob = URL.createObjectURL(await res.blob());
    const a = Object.assign(document.createElement("a"), {href: blob, download: filename});
    a.click();
    setTimeout(() => URL.revokeObjectURL(blob), 10000);
  }

  async function load() {
    const res = await Switchboard.api("/api/reports/?limit=20");
    if (!res.ok) return;
    for (const r of (await res.json()).reports.reverse()) {
      show(r.task_id, label(r.type, r.params), r.status, r.progress, r.message, r.result);
    }
  }
  const label = (type, params) => type + (params && params.room ? " " + params.room : "");

  const tasks = Switchboard.connect("tasks");
  Switchboard.showStatus(tasks, document.getElementById("status"));
  tasks.on("open", load);
  tasks.on("task_update", (f) => {
    const known = rows.get(f.task_id);
    show(f.task_id, known ? known.tr.querySelector(".name").textContent : f.task_id, f.status, f.progress, f.message, f.result);
  });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    const type = document.getElementById("report-type").value;
    const payload = {type};
    if (type === "chat_transcript") payload.room = document.getElementById("report-room").value;
    const res = await Switchboard.api("/api/reports/", {method: "POST", body: JSON.stringify(payload)});
    const data = await res.json();
    if (res.status !== 202) { error.textContent = data.message; return; }
    show(data.task_id, label(type, payload), "pending", 0, "", null);
  });
})();
