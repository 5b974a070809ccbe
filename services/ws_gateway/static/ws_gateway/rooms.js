// The room list: lists the rooms and creates one (POST /api/chat/rooms/).
// A static file, not inline: the pages' CSP has script-src 'self' only.
(async () => {
  const list = document.getElementById("rooms");
  const err = document.getElementById("rooms-error");
  async function load() {
    const res = await Switchboard.api("/api/chat/rooms/");
    const body = await res.json();
    list.replaceChildren(...body.rooms.map(r => {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = `/chat/${encodeURIComponent(r.slug)}/`;
      a.textContent = r.name;
      const d = document.createElement("span");
      d.className = "muted";
      d.textContent = r.description ? ` · ${r.description}` : "";
      li.append(a, d);
      return li;
    }));
  }
  document.getElementById("new-room").onsubmit = async (e) => {
    e.preventDefault();
    const name = document.getElementById("new-room-name").value.trim();
    const res = await Switchboard.api("/api/chat/rooms/", {method: "POST", body: JSON.stringify({name})});
    const body = await res.json();
    if (!res.ok) { err.textContent = body.message; return; }
    location.href = `/chat/${encodeURIComponent(body.slug)}/`;
  };
  await load();
})();
