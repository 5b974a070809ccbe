// The collab documents list: lists the user's documents and creates one.
// A static file, not inline: the pages' CSP has script-src 'self' only.
(function () {
  const list = document.getElementById("documents");
  async function load() {
    const res = await Switchboard.api("/api/collab/documents/");
    const body = await res.json();
    list.replaceChildren(...body.documents.map((d) => {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = "/collab/" + d.id + "/"; a.textContent = d.title;
      li.append(a, " (" + d.role + ", by " + d.owner + ")");
      return li;
    }));
  }
  document.getElementById("new-document").addEventListener("submit", async (e) => {
    e.preventDefault();
    const res = await Switchboard.api("/api/collab/documents/", {method: "POST", body: JSON.stringify({title: document.getElementById("new-title").value})});
    if (res.ok) location.href = "/collab/" + (await res.json()).id + "/";
  });
  load();
})();
