// kubectl gitops ui: the all-apps cards and each app's graph, refreshed on the server's
// "change" events (the cluster's watches), never by reloading the page.
"use strict";
(function () {
  const TOKEN = window.GITOPS_TOKEN;
  const main = document.getElementById("main");
  const crumbs = document.getElementById("crumbs");
  const live = document.getElementById("live");
  let selected = null; // node key "Kind/namespace/name" on the app page
  let tab = "diff";
  let busy = false;

  function api(path, options) {
    const sep = path.includes("?") ? "&" : "?";
    return fetch(path + sep + "token=" + encodeURIComponent(TOKEN), options || {});
  }
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }
  const SVGNS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }
  const ICON = { Healthy: "✓", Progressing: "◔", Degraded: "✕", Missing: "!", Unknown: "?",
                 Synced: "✓", OutOfSync: "≠", Extraneous: "+" };
  function badge(state, text, extra) {
    return el("span", { class: "badge " + state + (extra ? " " + extra : "") }, text || state);
  }
  function ago(seconds) {
    const s = Math.max(0, Date.now() / 1000 - seconds);
    if (s < 60) return Math.round(s) + "s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    if (s < 86400) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " d ago";
  }
  function syncText(a) {
    return a.sync === "OutOfSync" ? "OutOfSync (" + a.outOfSync + ")" : a.sync;
  }
  function showError(message) {
    main.replaceChildren(el("div", { class: "error" }, message));
  }

  // ---- the app list ----
  async function renderApps() {
    crumbs.replaceChildren("Applications");
    const response = await api("/api/apps");
    const data = await response.json();
    if (!response.ok) return showError(data.error || response.statusText);
    const count = (f) => data.apps.filter(f).length;
    const head = el("div", { class: "page-head" },
      el("div", { class: "grow" }, el("h1", {}, "Applications"),
        el("div", { class: "sub" }, "Branch head ", el("code", {}, data.head.slice(0, 7)),
          " · ", data.apps.length + " app" + (data.apps.length === 1 ? "" : "s"))));
    const summary = el("div", { class: "summary" },
      el("div", { class: "stat" }, el("b", {}, count((a) => a.ok)), "synced & healthy"),
      el("div", { class: "stat" }, el("b", {}, count((a) => a.sync !== "Synced")), "out of sync"),
      el("div", { class: "stat" }, el("b", {}, count((a) => a.health === "Degraded" || a.health === "Missing")), "degraded or missing"),
      el("div", { class: "stat" }, el("b", {}, count((a) => a.health === "Progressing")), "progressing"));
    const cards = el("div", { class: "cards" }, data.apps.map(card));
    main.replaceChildren(head, summary, cards);
  }
  function card(a) {
    const rev = a.clusterRevision
      ? el("span", {}, el("code", {}, a.clusterRevision.slice(0, 7)),
          a.behind ? " · " + a.behind + " commit" + (a.behind === 1 ? "" : "s") + " behind" : a.behind === 0 ? " · up to date" : "")
      : el("span", {}, "never synced");
    return el("a", { class: "card h-" + a.health, href: "#/app/" + encodeURIComponent(a.app), "data-app": a.app },
      el("div", { class: "name" }, a.app),
      el("div", { class: "where" }, "namespace " + a.namespace + " · " + a.path),
      el("div", { class: "badges" },
        badge(a.sync === "Unknown" ? "Unknown" : a.sync, ICON[a.sync] ? ICON[a.sync] + " " + syncText(a) : syncText(a), "sync-label"),
        badge(a.health, (ICON[a.health] || "") + " " + a.health, "health-label")),
      a.error ? el("div", { class: "reason" }, a.error) : a.healthReason ? el("div", { class: "reason" }, a.healthReason) : null,
      el("div", { class: "foot" }, rev, el("span", {}, a.objects + " object" + (a.objects === 1 ? "" : "s"))));
  }

  // ---- the app page ----
  const W = 252, H = 90, GX = 48, GY = 14;
  function nodeKey(n) { return n.kind + "/" + n.namespace + "/" + n.name; }
  function layout(nodes) {
    // Layered: depth is the column; rows in tree order, a parent beside its first child.
    const depth = new Map(), kids = new Map();
    for (const n of nodes) {
      depth.set(n.id, n.parent === null ? 0 : depth.get(n.parent) + 1);
      if (n.parent !== null) (kids.get(n.parent) || kids.set(n.parent, []).get(n.parent)).push(n.id);
    }
    const pos = new Map();
    let row = 0;
    function place(id) {
      const children = kids.get(id) || [];
      const start = row;
      if (children.length === 0) row += 1; else children.forEach(place);
      const end = Math.max(row, start + 1);
      pos.set(id, { x: 12 + depth.get(id) * (W + GX), y: 12 + ((start + end - 1) / 2) * (H + GY) });
    }
    nodes.filter((n) => n.parent === null).forEach((n) => place(n.id));
    const cols = Math.max(1, ...[...depth.values()].map((d) => d + 1));
    return { pos, width: 24 + cols * W + (cols - 1) * GX, height: 24 + row * (H + GY) - GY };
  }
  function truncate(text, n) { return text.length > n ? text.slice(0, n - 1) + "…" : text; }
  const COLOR = { Healthy: "#12805c", Synced: "#12805c", Progressing: "#a15c00", OutOfSync: "#a15c00",
                  Extraneous: "#a15c00", Degraded: "#c0262d", Missing: "#c0262d", Unknown: "#5b6474" };
  const FILL = { Healthy: "#e3f6ee", Synced: "#e3f6ee", Progressing: "#fff2d9", OutOfSync: "#fff2d9",
                 Extraneous: "#fff2d9", Degraded: "#fde7e7", Missing: "#fde7e7", Unknown: "#eceef2" };
  function pill(x, y, state, label) {
    const text = (ICON[state] || "") + " " + label;
    const w = 14 + text.length * 6.3;
    return { w, g: svg("g", { transform: "translate(" + x + "," + y + ")" },
      svg("rect", { width: w, height: 18, rx: 9, fill: FILL[state] || "#eceef2" }),
      svg("text", { x: w / 2, y: 13, "text-anchor": "middle", class: "pill-text", fill: COLOR[state] || "#5b6474" }, text)) };
  }
  function drawGraph(detail, onSelect) {
    const { pos, width, height } = layout(detail.nodes);
    const root = svg("svg", { width, height, viewBox: "0 0 " + width + " " + height, role: "img", "aria-label": "object graph" });
    for (const n of detail.nodes) {
      if (n.parent === null) continue;
      const a = pos.get(n.parent), b = pos.get(n.id);
      const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, mx = (x1 + x2) / 2;
      root.append(svg("path", { class: "edge", d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}` }));
    }
    for (const n of detail.nodes) {
      const p = pos.get(n.id);
      const g = svg("g", { class: "node " + (n.inGit ? "git" : "live") + (selected === nodeKey(n) ? " selected" : ""),
        transform: `translate(${p.x},${p.y})`, "data-kind": n.kind, "data-name": n.name,
        "data-health": n.health, "data-sync": n.sync || "", tabindex: 0 });
      g.append(svg("rect", { class: "box", width: W, height: H, rx: 9 }));
      g.append(svg("rect", { x: 0, y: 0, width: 5, height: H, rx: 2, fill: COLOR[n.health] || "#5b6474" }));
      g.append(svg("text", { x: 16, y: 18, class: "kind" }, n.kind + (n.inGit ? "" : " · live")));
      g.append(svg("text", { x: 16, y: 36, class: "nname" }, truncate(n.name, 28)));
      let x = 16;
      const h = pill(x, 44, n.health, n.health); g.append(h.g); x += h.w + 6;
      if (n.sync) { const s = pill(x, 44, n.sync, n.sync); g.append(s.g); x += s.w + 6; }
      if (n.commit) {
        g.append(svg("text", { x: 16, y: 80, class: "meta" },
          truncate(n.commit.short + " · " + n.commit.subject + " · " + n.commit.author + ", " + ago(n.commit.time), 40)));
      } else if (n.health !== "Healthy" && n.healthReason) {
        g.append(svg("text", { x: 16, y: 80, class: "meta", style: "fill:" + (COLOR[n.health] || "#667085") }, truncate(n.healthReason, 40)));
      }
      g.append(svg("title", {}, `${n.kind} ${n.name}\n${n.health}${n.healthReason ? ": " + n.healthReason : ""}` +
        (n.commit ? `\n${n.commit.short} ${n.commit.subject} — ${n.commit.author}, ${ago(n.commit.time)}` : "")));
      g.addEventListener("click", () => onSelect(n));
      g.addEventListener("keydown", (e) => { if (e.key === "Enter") onSelect(n); });
      root.append(g);
    }
    return root;
  }
  function colorDiff(text) {
    const pre = el("pre", { class: "code", id: "node-code" });
    if (!text) { pre.append("No difference: the cluster holds what Git declares."); return pre; }
    for (const line of text.split("\n")) {
      const cls = line.startsWith("+++") || line.startsWith("---") ? null
        : line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : line.startsWith("@@") ? "hunk"
        : line.startsWith("#") || line.startsWith("Missing") ? "note" : null;
      pre.append(cls ? el("span", { class: cls }, line) : line + "\n");
    }
    return pre;
  }
  function sidePanel(n) {
    if (!n) return el("div", { class: "side" }, el("div", { class: "empty" }, "Select an object in the graph to see its live YAML, its Git YAML and the difference."));
    const tabs = [["diff", "Diff"], ["live", "Live YAML"], ["git", "Git YAML"]].filter(([t]) => n.inGit || t === "live");
    const current = tabs.some(([t]) => t === tab) ? tab : tabs[0][0];
    const body = current === "diff" ? colorDiff(n.diff)
      : el("pre", { class: "code", id: "node-code" }, current === "live" ? (n.liveYaml || "Not in the cluster.") : n.gitYaml);
    const commit = n.commit ? el("div", { class: "commit" },
      el("span", { class: "l" }, "commit"), el("span", {}, el("code", {}, n.commit.short), " ", n.commit.subject),
      el("span", { class: "l" }, "author"), el("span", {}, n.commit.author + " · " + ago(n.commit.time))) : null;
    return el("div", { class: "side", id: "side" },
      el("div", { class: "head" },
        el("div", { class: "k" }, n.kind + (n.inGit ? " · in Git" : " · made by the cluster")),
        el("div", { class: "n" }, n.namespace ? n.namespace + "/" + n.name : n.name),
        el("div", { class: "badges" }, badge(n.health, (ICON[n.health] || "") + " " + n.health),
          n.sync ? badge(n.sync, (ICON[n.sync] || "") + " " + n.sync) : badge("Unknown", "live", "live-made")),
        n.healthReason && n.health !== "Healthy" ? el("div", { class: "why" }, n.healthReason) : null,
        n.fields.length ? el("div", { class: "why" }, "Differs: " + n.fields.join(", ")) : null,
        commit),
      el("div", { class: "tabs" }, tabs.map(([t, label]) =>
        el("button", { class: "tab" + (t === current ? " on" : ""), "data-tab": t, onclick: () => { tab = t; refresh(); } }, label))),
      body);
  }
  async function renderApp(name) {
    crumbs.replaceChildren(el("a", { href: "#/" }, "Applications"), " / ", name);
    const response = await api("/api/apps/" + encodeURIComponent(name));
    const d = await response.json();
    if (!response.ok) return showError(d.error || response.statusText);
    const s = d.summary;
    const byKey = new Map(d.nodes.map((n) => [nodeKey(n), n]));
    if (selected && !byKey.has(selected)) selected = null;
    if (!selected) {
      const first = d.nodes.find((n) => n.inGit && n.sync !== "Synced") || d.nodes.find((n) => n.health !== "Healthy") || d.nodes[0];
      selected = first ? nodeKey(first) : null;
    }
    const rev = d.clusterCommit
      ? el("span", {}, "cluster at ", el("code", {}, d.clusterCommit.short), " ", d.clusterCommit.subject,
          s.behind ? " · " + s.behind + " behind" : " · up to date")
      : "never synced";
    const head = el("div", { class: "page-head" },
      el("div", { class: "grow" },
        el("h1", { id: "app-name" }, s.app),
        el("div", { class: "sub" }, "namespace " + s.namespace + " · " + s.path + " · ", rev,
          d.head ? el("span", {}, " · head ", el("code", {}, d.head.short), " by " + d.head.author + ", " + ago(d.head.time)) : null,
          d.syncedBy ? " · synced by " + d.syncedBy : "")),
      el("div", { class: "badges", id: "app-badges" },
        badge(s.sync, (ICON[s.sync] || "") + " " + syncText(s), "sync-label"), " ",
        badge(s.health, (ICON[s.health] || "") + " " + s.health, "health-label")),
      el("button", { class: "btn primary", id: "sync-button", onclick: () => openSync(s.app) }, "Sync…"));
    const select = (n) => { selected = nodeKey(n); refresh(); };
    const graph = el("div", { class: "graph-panel" },
      el("div", { class: "legend" }, el("span", { class: "lg-git" }, "declared in Git"), el("span", { class: "lg-live" }, "made by the cluster (ownerReferences)"),
        s.healthReason ? el("span", {}, "worst: " + s.healthReason) : null),
      drawGraph(d, select));
    main.replaceChildren(head, el("div", { class: "app-layout" }, graph, sidePanel(byKey.get(selected))));
  }

  // ---- sync ----
  const modal = document.getElementById("modal");
  function closeModal() { modal.hidden = true; busy = false; refresh(); }
  async function openSync(app) {
    busy = true;
    const title = document.getElementById("modal-title"), body = document.getElementById("modal-body"), actions = document.getElementById("modal-actions");
    title.textContent = "Sync " + app + " to the branch head";
    body.replaceChildren(el("p", { class: "muted" }, "Loading the difference…"));
    actions.replaceChildren();
    modal.hidden = false;
    const response = await api("/api/apps/" + encodeURIComponent(app) + "/diff");
    const text = await response.text();
    body.replaceChildren(el("p", { class: "muted" }, "What the sync changes (cluster as −, Git as +):"), colorDiff(text.trim() ? text : ""));
    const prune = el("input", { type: "checkbox", id: "prune" });
    actions.replaceChildren(
      el("label", {}, prune, "Prune: delete objects Git no longer declares (--prune)"),
      el("button", { class: "btn", onclick: closeModal }, "Cancel"),
      el("button", { class: "btn primary", id: "sync-confirm", onclick: () => runSync(app, prune.checked) }, "Sync"));
  }
  async function runSync(app, prune) {
    const body = document.getElementById("modal-body"), actions = document.getElementById("modal-actions");
    const log = el("pre", { class: "code", id: "sync-log" });
    body.replaceChildren(el("p", { class: "muted" }, "kubectl gitops sync " + app + (prune ? " --prune" : "")), log);
    actions.replaceChildren(el("span", { class: "muted" }, "Syncing…"));
    const response = await api("/api/apps/" + encodeURIComponent(app) + "/sync" + (prune ? "?prune=true" : ""), { method: "POST" });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let code = null, buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let i;
      while ((i = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, i); buffer = buffer.slice(i + 1);
        if (line.startsWith("\u001eexit ")) code = line.slice(6); else log.append(line + "\n");
        log.scrollTop = log.scrollHeight;
      }
    }
    const ok = code === "0";
    actions.replaceChildren(
      el("span", { id: "sync-done", class: ok ? "result-ok" : "result-bad", "data-exit": code || "" },
        ok ? "✓ Synced (exit 0)" : "✕ sync exited " + (code || "without a code")),
      el("button", { class: "btn primary", onclick: closeModal }, "Close"));
  }

  // ---- routing and live updates ----
  function route() {
    const m = location.hash.match(/^#\/app\/(.+)$/);
    return m ? { app: decodeURIComponent(m[1]) } : { app: null };
  }
  let pending = Promise.resolve();
  function refresh() {
    pending = pending.then(() => { const r = route(); return r.app ? renderApp(r.app) : renderApps(); })
      .catch((e) => showError(String(e)));
    return pending;
  }
  window.addEventListener("hashchange", () => { selected = null; tab = "diff"; refresh(); });
  const events = new EventSource("/api/events?token=" + encodeURIComponent(TOKEN));
  events.addEventListener("open", () => { live.textContent = "live"; live.className = "live on"; });
  events.addEventListener("error", () => { live.textContent = "reconnecting…"; live.className = "live off"; });
  events.addEventListener("change", () => { if (!busy) refresh(); });
  refresh();
})();
