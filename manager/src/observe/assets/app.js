// The swarmr dashboard: polls /api/overview and redraws. Every value from the cluster is
// set as text (never as HTML): names come from users.
"use strict";

const POLL_MS = 2000;
const SVG = "http://www.w3.org/2000/svg";

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function s(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = String(text);
  return el;
}

function pill(text, kind) { return h("span", { class: "pill " + (kind || "") }, text); }

function stateKind(state) {
  const s = String(state).toLowerCase();
  if (s === "ready" || s === "running" || s === "active" || s === "completed") return "ok";
  if (s === "down" || s === "failed" || s === "rejected" || s === "orphaned" || s === "drain" ||
      s === "paused" || s.startsWith("rollback")) return "bad";
  if (s === "complete" || s === "shutdown") return "";
  return "warn";
}

function bytes(n) {
  if (!n) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + " " + units[i];
}

function fill(table, rows, columns, emptyText) {
  const body = document.querySelector(`#${table} tbody`);
  body.replaceChildren();
  if (!rows.length) {
    body.append(h("tr", {}, h("td", { class: "empty", colspan: String(columns) }, emptyText)));
  }
  for (const cells of rows) {
    const tr = h("tr");
    for (const cell of cells) tr.append(cell instanceof Node && cell.tagName === "TD" ? cell : h("td", {}, cell));
    body.append(tr);
  }
}

function td(cls, ...children) { return h("td", { class: cls }, ...children); }

function card(label, value, sub) {
  return h("div", { class: "card" }, h("div", { class: "label" }, label),
    h("div", { class: "value" }, value), h("div", { class: "sub" }, sub));
}

function renderCards(view) {
  const ready = view.nodes.filter(n => n.status === "Ready").length;
  const managers = view.nodes.filter(n => n.role === "manager").length;
  const converged = view.services.filter(s => s.running >= s.desired).length;
  const running = view.tasks.filter(t => t.state === "running").length;
  const overlays = view.networks.filter(n => !n.ingress).length;
  document.getElementById("cards").replaceChildren(
    card("Nodes", `${ready}/${view.nodes.length}`, `ready · ${managers} manager${managers === 1 ? "" : "s"}`),
    card("Services", `${converged}/${view.services.length}`, "converged"),
    card("Tasks", running, `running of ${view.tasks.length} listed`),
    card("Networks", overlays, view.networks.length > overlays ? "overlay · plus ingress" : "overlay"),
  );
}

function renderNodes(view) {
  const rows = view.nodes.slice().sort((a, b) => a.hostname.localeCompare(b.hostname)).map(n => [
    td("", h("b", {}, n.hostname), " ", h("span", { class: "muted mono" }, n.id.slice(0, 10))),
    td("", n.leader ? pill("Leader", "leader") : n.role === "manager" ? pill("manager") : h("span", { class: "muted" }, "worker")),
    td("", pill(n.status, stateKind(n.status))),
    td("", pill(n.availability, n.availability === "Active" ? "ok" : "warn")),
    td("mono", n.addr || "–"),
    td("num", n.cpus ? n.cpus.toFixed(n.cpus % 1 ? 1 : 0) : "–"),
    td("num", bytes(n.memory_bytes)),
    td("num", n.tasks_running),
  ]);
  fill("nodes", rows, 8, "no nodes");
}

function ports(list) {
  if (!list.length) return h("span", { class: "muted" }, "–");
  return h("span", { class: "mono" }, list.map(p =>
    (p.mode === "host" ? "" : "*:") + `${p.published}->${p.target}/${p.protocol}`).join(", "));
}

function renderServices(view) {
  const rows = view.services.slice().sort((a, b) => a.name.localeCompare(b.name)).map(sv => {
    const pct = sv.desired ? Math.min(100, Math.round(100 * sv.running / sv.desired)) : 100;
    const bar = h("span", { class: "bar" + (sv.running < sv.desired ? " partial" : "") });
    bar.append(h("span", { style: `width:${pct}%` }));
    const update = sv.update_state ? pill(sv.update_state, stateKind(sv.update_state)) : h("span", { class: "muted" }, "–");
    if (sv.update_message) update.title = sv.update_message;
    return [
      td("", h("b", {}, sv.name)), td("muted", sv.mode),
      td("nowrap", bar, `${sv.running}/${sv.desired}`), td("mono", sv.image),
      td("", ports(sv.ports)), td("", update),
    ];
  });
  fill("services", rows, 6, "no services yet: swarmr service create …");
}

function renderTasks(view) {
  const rows = view.tasks.map(t => [
    td("", h("b", {}, t.name), " ", h("span", { class: "muted mono" }, t.id.slice(0, 10))),
    t.service, t.node || h("span", { class: "muted" }, "unassigned"),
    td("", pill(t.state, stateKind(t.state))), td("muted", t.desired),
    td("error", t.error || ""),
  ]);
  fill("tasks", rows, 6, "no tasks");
}

// One network: a box per host with its tasks and VTEP, and the VXLAN tunnels between them.
function networkPicture(net) {
  const boxW = 230, gap = 40, top = net.hosts.length > 1 ? 70 : 12, line = 18;
  const perRow = Math.max(1, Math.min(net.hosts.length, 5));
  const rows = Math.ceil(net.hosts.length / perRow);
  const tallest = Math.max(1, ...net.hosts.map(x => x.tasks.length));
  const boxH = 52 + line * tallest;
  const width = perRow * boxW + (perRow - 1) * gap + 20;
  const height = top + rows * (boxH + 24);
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img" });
  const centers = [];
  net.hosts.forEach((host, i) => {
    const x = 10 + (i % perRow) * (boxW + gap), y = top + Math.floor(i / perRow) * (boxH + 24);
    centers.push([x + boxW / 2, y]);
    svg.append(s("rect", { x, y, width: boxW, height: boxH, rx: 8, class: "host-box" }));
    svg.append(s("text", { x: x + 12, y: y + 20, class: "host-name" }, host.node));
    host.tasks.forEach((t, j) => {
      const ty = y + 42 + j * line;
      svg.append(s("circle", { cx: x + 16, cy: ty - 4, r: 3.5, fill: t.state === "running" ? "#1f9d55" : "#d98b00" }));
      svg.append(s("text", { x: x + 26, y: ty, class: "task-row" }, t.name));
      svg.append(s("text", { x: x + boxW - 10, y: ty, class: "task-ip", "text-anchor": "end" }, t.addr.split("/")[0]));
    });
    svg.append(s("text", { x: x + boxW - 10, y: y + 20, class: "vtep", "text-anchor": "end" }, "VTEP " + (host.vtep || "?")));
  });
  // Tunnels between the hosts of the first row (a full mesh: every pair has one).
  const first = centers.slice(0, perRow);
  for (let a = 0; a < first.length; a++) {
    for (let b = a + 1; b < first.length; b++) {
      const [x1, y1] = first[a], [x2] = first[b];
      const lift = 14 + 16 * (b - a - 1);
      svg.append(s("path", { d: `M ${x1} ${y1} C ${x1} ${y1 - lift - 20}, ${x2} ${y1 - lift - 20}, ${x2} ${y1}`, class: "tunnel" }));
    }
  }
  if (first.length > 1) {
    svg.append(s("text", { x: 10, y: 14, class: "tunnel-label" },
      `VXLAN VNI ${net.vni} · UDP 4789 · ${net.hosts.length} VTEPs, a tunnel between every pair`));
  }
  return svg;
}

function renderNetworks(view) {
  const box = document.getElementById("networks");
  box.replaceChildren();
  const nets = view.networks.slice().sort((a, b) => a.vni - b.vni);
  if (!nets.length) box.append(h("div", { class: "empty" }, "no networks yet: swarmr network create …"));
  for (const net of nets) {
    const title = h("div", { class: "title" }, h("b", {}, net.name),
      h("span", { class: "muted mono" }, `VNI ${net.vni}`), h("span", { class: "muted mono" }, net.subnet),
      net.ingress ? pill("ingress", "leader") : "", net.internal ? pill("internal") : "");
    const el = h("div", { class: "network" }, title);
    el.append(net.hosts.length ? networkPicture(net) : h("div", { class: "empty" }, "no tasks on this network"));
    box.append(el);
  }
}

function render(view) {
  document.getElementById("cluster").textContent =
    `cluster ${view.cluster.id.slice(0, 12)} · answered by ${view.cluster.answered_by.slice(0, 10)}`;
  renderCards(view);
  renderNodes(view);
  renderServices(view);
  renderNetworks(view);
  renderTasks(view);
}

async function poll() {
  const refresh = document.getElementById("refresh");
  const label = document.getElementById("refresh-text");
  try {
    const response = await fetch("/api/overview", { cache: "no-store" });
    if (!response.ok) throw new Error((await response.text()).trim() || response.statusText);
    render(await response.json());
    refresh.className = "refresh live";
    label.textContent = "live · " + new Date().toLocaleTimeString();
  } catch (e) {
    refresh.className = "refresh stale";
    label.textContent = "not updating: " + e.message;
  }
  setTimeout(poll, POLL_MS);
}

poll();
