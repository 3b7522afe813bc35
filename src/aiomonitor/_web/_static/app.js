// The aiomonitor dashboard: one page, hash-routed views, data from /api/v1/.
// Every value from the app is put into the page as text (never as HTML):
// task names and coroutine names are the app's strings, not ours.
"use strict";

const TOKEN = document.querySelector('meta[name="aiomonitor-token"]').content;
// A read-only monitor refuses cancel: the page offers no button for it.
const READONLY = document.querySelector('meta[name="aiomonitor-readonly"]').content === "1";
const REFRESH_MS = 2000;
const PAGE_SIZES = [50, 100, 500];
const TREE_NODES_DRAWN = 3000;
const FOLD_AT = 3;

// -- small helpers ---------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, options) {
  const response = await fetch(path, {
    ...options,
    headers: { Authorization: "Bearer " + TOKEN, ...((options && options.headers) || {}) },
    cache: "no-store",
  });
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  if (!response.ok) throw new ApiError(response.status, (body && body.error) || response.statusText);
  return body;
}

function seconds(value) {
  if (value === null || value === undefined) return "-";
  if (value < 0.001) return (value * 1e6).toFixed(0) + " µs";
  if (value < 1) return (value * 1000).toFixed(1) + " ms";
  if (value < 60) return value.toFixed(1) + " s";
  if (value < 3600) return (value / 60).toFixed(1) + " min";
  return (value / 3600).toFixed(1) + " h";
}

function place(location) {
  // A location object, or ps -j's [file, line, function] for where a task was created.
  if (!location) return "-";
  return Array.isArray(location) ? `${location[0]}:${location[1]}` : `${location.file}:${location.line}`;
}

function shortPlace(location) {
  // The file's name in a table cell; the whole path on hover.
  const full = place(location);
  return el("span", { title: full, text: full.split("/").pop() });
}

function say(text, isError) {
  const box = document.getElementById("message");
  box.textContent = text;
  box.className = isError ? "message error" : "message";
  box.hidden = !text;
}

function stackBlock(frames) {
  if (!frames || !frames.length) return el("p", { class: "muted", text: "No stack (the task has not started yet?)" });
  return el("pre", { class: "stack" }, frames.map((f) => el("span", { class: "frame" },
    `  File "${f.file}", line ${f.line}, in ${f.function}\n`,
    f.source ? el("span", { class: "src", text: `    ${f.source}\n` }) : null)));
}

function stateCell(state) {
  return el("td", { class: `state state-${state}`, text: state });
}

function taskLink(id, label) {
  return el("a", { href: `#/task/${id}`, text: label === undefined ? String(id) : label });
}

async function cancelTask(id, name) {
  if (!window.confirm(`Cancel task ${id} (${name})?`)) return;
  try {
    const result = await api(`/api/v1/tasks/${id}/cancel`, { method: "POST" });
    if (!result.requested) say(`Task ${id} had already finished.`);
    else if (!result.finished) say(`Cancel requested for task ${id}; it is still running (cleaning up?).`);
    else say(`Task ${id} ${result.ending === "cancelled" ? "was cancelled" : result.ending}.`);
  } catch (error) {
    say(`Could not cancel task ${id}: ${error.message}`, true);
  }
  refresh();
}

// -- views -------------------------------------------------------------------------
// Each view has render(container) (once) and update() (each refresh; may be absent).

const tasksView = {
  live: true,
  state: { filter: "", sort: "", limit: 100, offset: 0, group: false },
  render(container) {
    const s = this.state;
    let timer = null;
    const group = el("input", { type: "checkbox", id: "group", checked: s.group,
      onchange: (event) => { s.group = event.target.checked; s.offset = 0; this.sort.disabled = s.group; this.update(); } });
    const filter = el("input", {
      type: "search", id: "filter", placeholder: "filter: name, coroutine, state, file…", value: s.filter,
      oninput: (event) => {
        clearTimeout(timer);
        timer = setTimeout(() => { s.filter = event.target.value; s.offset = 0; this.update(); }, 250);
      },
    });
    const sort = this.sort = el("select", { id: "sort", disabled: s.group, onchange: (event) => { s.sort = event.target.value; s.offset = 0; this.update(); } },
      ["", "id", "name", "state", "age", "busy"].map((key) => el("option", { value: key, selected: key === s.sort, text: key ? `sort by ${key}` : "default order" })));
    const size = el("select", { id: "page-size", onchange: (event) => { s.limit = Number(event.target.value); s.offset = 0; this.update(); } },
      PAGE_SIZES.map((n) => el("option", { value: n, selected: n === s.limit, text: `${n} per page` })));
    this.prev = el("button", { id: "prev", onclick: () => { s.offset = Math.max(0, s.offset - s.limit); this.update(); } }, "‹ previous");
    this.next = el("button", { id: "next", onclick: () => { s.offset += s.limit; this.update(); } }, "next ›");
    this.summary = el("span", { id: "summary", class: "muted" });
    this.table = el("table", { id: "tasks" });
    const groupToggle = el("label", { title: "One row per coroutine waiting at one line (ps -g)" }, group, " group alike");
    container.append(el("h2", { text: "Live tasks" }), el("div", { class: "toolbar" }, filter, groupToggle, sort, size, this.prev, this.next, this.summary), el("div", { class: "scroll" }, this.table));
  },
  seq: 0,
  async update() {
    const s = this.state;
    const params = new URLSearchParams({ limit: s.limit, offset: s.offset });
    if (s.filter.trim()) params.set("filter", s.filter.trim());
    if (s.sort && !s.group) params.set("sort", s.sort);
    if (s.group) params.set("group", "1");
    const seq = ++this.seq;  // a refresh and a keystroke may cross: only the newest answer is shown
    const page = await api(`/api/v1/tasks?${params}`);
    if (seq !== this.seq) return;
    if (page.grouped) { this.showGroups(page); return; }
    const last = page.offset + page.tasks.length;
    this.summary.textContent = page.tasks.length
      ? `${page.offset + 1}–${last} of ${page.matched} shown` + (page.matched !== page.total ? ` (${page.total} tasks in all)` : "")
      : `none of ${page.total} tasks match`;
    this.prev.disabled = page.offset === 0;
    this.next.disabled = last >= page.matched;
    const head = ["id", "state", "name", "coroutine", "location"];
    if (page.traced) head.push("age", "created at");
    if (page.timed) head.push("steps", "busy");
    if (!READONLY) head.push("");
    const rows = page.tasks.map((t) => el("tr", { "data-task-id": t.id },
      el("td", { class: "code id" }, taskLink(t.id)), stateCell(t.state), el("td", { class: "name" }, taskLink(t.id, t.name)),
      el("td", { class: "code", text: t.coro }), el("td", { class: "code" }, shortPlace(t.location)),
      page.traced ? [el("td", { class: "num", text: seconds(t.age) }), el("td", { class: "code" }, shortPlace(t.created))] : null,
      page.timed ? [el("td", { class: "num", text: t.steps === null ? "-" : t.steps }), el("td", { class: "num", text: seconds(t.busy) })] : null,
      READONLY ? null : el("td", {}, el("button", { class: "danger cancel", onclick: () => cancelTask(t.id, t.name) }, "Cancel"))));
    this.table.replaceChildren(el("thead", {}, el("tr", {}, head.map((h) => el("th", { text: h })))), el("tbody", {}, rows));
  },
  showGroups(page) {
    const last = page.offset + page.groups.length;
    this.summary.textContent = `${page.group_count} groups of ${page.matched} tasks` + (page.groups.length ? `; ${page.offset + 1}–${last} shown` : "");
    this.prev.disabled = page.offset === 0;
    this.next.disabled = last >= page.group_count;
    const head = ["count", "states", "name", "coroutine", "location", "oldest", "newest", "examples"];
    const rows = page.groups.map((g) => el("tr", { class: "group" },
      el("td", { class: "num", text: g.count }),
      el("td", { text: Object.entries(g.states).map(([state, n]) => Object.keys(g.states).length > 1 ? `${state} ${n}` : state).join(", ") }),
      el("td", { class: "name", text: g.name === null ? "tasks" : g.name }), el("td", { class: "code", text: g.coro }),
      el("td", { class: "code" }, shortPlace(g.location)),
      el("td", { class: "num", text: seconds(g.oldest_age) }), el("td", { class: "num", text: seconds(g.newest_age) }),
      el("td", { class: "code id" }, g.examples.flatMap((id, i) => i ? [", ", taskLink(id)] : [taskLink(id)]), g.count > g.examples.length ? ", …" : "")));
    this.table.replaceChildren(el("thead", {}, el("tr", {}, head.map((h) => el("th", { text: h })))), el("tbody", {}, rows));
  },
};

const taskView = {
  live: true,
  render(container, id) {
    this.id = id;
    this.box = el("div", { id: "task" });
    container.append(el("p", {}, el("a", { href: "#/tasks", text: "‹ all tasks" })), this.box);
  },
  async update() {
    let t;
    try {
      t = await api(`/api/v1/tasks/${this.id}`);
    } catch (error) {
      if (error.status !== 404) throw error;
      this.box.replaceChildren(el("h2", { text: `Task ${this.id}` }), el("p", { class: "muted", text: "This task is no longer running (see Ended for how it ended, with a history kept)." }));
      return;
    }
    const facts = [["state", el("span", { class: `state state-${t.state}`, text: t.state })], ["coroutine", t.coro], ["at", place(t.location)]];
    if (t.age !== null) facts.push(["age", seconds(t.age)], ["created at", place(t.created)]);
    if (t.steps !== null) facts.push(["steps", t.steps], ["busy", seconds(t.busy)], ["longest step", seconds(t.longest_step)]);
    const parts = [
      el("h2", {}, `Task ${t.id}: `, el("span", { class: "name", text: t.name })),
      el("dl", { class: "facts" }, facts.map(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)])),
      READONLY ? null : el("p", {}, el("button", { class: "danger cancel", onclick: () => cancelTask(t.id, t.name) }, "Cancel this task")),
      el("h3", { text: "Await stack (most recent call last)" }), stackBlock(t.stack),
    ];
    if (t.wait) parts.push(el("h3", { text: "Waiting for" }), el("pre", { text: t.wait.join("\n") }));
    if (t.canceller) parts.push(el("h3", { text: `Cancellation requested by ${t.canceller.task_id === null ? "code outside any task" : `task ${t.canceller.task_id} (${t.canceller.task_name})`}` }), stackBlock(t.canceller.stack));
    if (t.creation_chain.length) {
      parts.push(el("h3", { text: "Creation chain (oldest first)" }), el("ul", {},
        t.earlier_creators ? el("li", { class: "muted", text: `… ${t.earlier_creators} more creators before these` }) : null,
        t.creation_chain.map((link) => el("li", {}, taskLink(link.task_id, `task ${link.task_id}`), ` (${link.name || "ended"}) created at `, el("span", { class: "code", text: place(link.created) })))));
    }
    this.box.replaceChildren(...parts);
  },
};

const endedView = {
  live: true,
  state: { filter: "" },
  render(container) {
    let timer = null;
    const filter = el("input", { type: "search", id: "ended-filter", placeholder: "filter", value: this.state.filter,
      oninput: (event) => { clearTimeout(timer); timer = setTimeout(() => { this.state.filter = event.target.value; this.update(); }, 250); } });
    this.summary = el("span", { class: "muted" });
    this.table = el("table", { id: "ended" });
    container.append(el("h2", { text: "Ended tasks (newest first)" }), el("div", { class: "toolbar" }, filter, this.summary), this.table);
  },
  async update() {
    const params = new URLSearchParams({ limit: 200 });
    if (this.state.filter.trim()) params.set("filter", this.state.filter.trim());
    let page;
    try {
      page = await api(`/api/v1/ended?${params}`);
    } catch (error) {
      if (error.status !== 409) throw error;
      this.summary.textContent = error.message;
      this.table.replaceChildren();
      return;
    }
    this.summary.textContent = `${page.matched} remembered`;
    this.table.replaceChildren(
      el("thead", {}, el("tr", {}, ["#", "task id", "name", "coroutine", "outcome", "lived", "cancelled by"].map((h) => el("th", { text: h })))),
      el("tbody", {}, page.ended.map((e) => el("tr", {},
        el("td", { class: "num", text: e.id }), el("td", { class: "code", text: e.task_id }), el("td", { text: e.name }),
        el("td", { class: "code", text: e.coro }), el("td", { text: e.outcome }), el("td", { class: "num", text: seconds(e.lived) }),
        el("td", { text: e.cancelled_by ? `${e.cancelled_by.task_name || "outside any task"}` : "" })))));
  },
};

const treeView = {
  live: false,
  render(container) {
    this.box = el("div", { class: "tree", id: "tree" });
    container.append(el("h2", { text: "Await tree" }),
      el("div", { class: "toolbar" }, el("button", { onclick: () => this.update() }, "Refresh"),
        el("span", { class: "muted", text: "Each task above the tasks it awaits (or its nursery's children). Not refreshed on its own: a big tree is costly to draw." })),
      this.box);
  },
  async update() {
    const tree = await api("/api/v1/tree");
    const names = new Map(tree.tasks.map((t) => [t.id, t]));
    const children = new Map();
    const awaited = new Set();
    for (const edge of tree.edges) {
      if (!children.has(edge.waiter)) children.set(edge.waiter, []);
      children.get(edge.waiter).push(edge);
      awaited.add(edge.awaited);
    }
    let drawn = 0;
    const seen = new Set();
    const node = (id, how) => {
      drawn += 1;
      seen.add(id);
      const t = names.get(id) || { name: "?", coro: "" };
      const label = el("span", {}, taskLink(id, t.name), " ", el("span", { class: "code muted", text: t.coro }), how ? el("span", { class: "how", text: ` (${how})` }) : null);
      const kids = (children.get(id) || []).filter((edge) => !seen.has(edge.awaited));
      if (!kids.length || drawn > TREE_NODES_DRAWN) return el("li", {}, label);
      return el("li", {}, el("details", { open: drawn < 200 }, el("summary", {}, label, el("span", { class: "muted", text: ` · ${kids.length}` })),
        el("ul", {}, folded(kids).map((item) => item.edges ? foldedItem(item) : node(item.awaited, item.how)))));
    };
    // Three or more childless siblings running the same coroutine at the same
    // line, hung the same way, are one line (as pstree folds them).
    const folded = (kids) => {
      const alike = new Map();
      for (const edge of kids) {
        if (children.has(edge.awaited)) continue;
        const t = names.get(edge.awaited) || {};
        const key = JSON.stringify([t.coro, place(t.location), edge.how]);
        if (!alike.has(key)) alike.set(key, []);
        alike.get(key).push(edge);
      }
      const groups = [...alike.values()].filter((edges) => edges.length >= FOLD_AT).sort((a, b) => b.length - a.length);
      const gone = new Set(groups.flatMap((edges) => edges.map((edge) => edge.awaited)));
      return [...groups.map((edges) => ({ edges })), ...kids.filter((edge) => !gone.has(edge.awaited))];
    };
    const foldedItem = ({ edges }) => {
      drawn += 1;
      for (const edge of edges) seen.add(edge.awaited);
      const first = names.get(edges[0].awaited) || { name: "?", coro: "" };
      const shared = edges.every((edge) => (names.get(edge.awaited) || {}).name === first.name) ? first.name : "tasks";
      const examples = edges.slice(0, 3).flatMap((edge, i) => i ? [", ", taskLink(edge.awaited)] : [taskLink(edge.awaited)]);
      return el("li", { class: "folded" }, `${edges.length} × ${shared} `, el("span", { class: "code muted", text: `${first.coro} ${place(first.location)}` }),
        edges[0].how ? el("span", { class: "how", text: ` (${edges[0].how})` }) : null, " e.g. ", ...examples, edges.length > 3 ? ", …" : "");
    };
    const roots = tree.tasks.filter((t) => !awaited.has(t.id)).map((t) => t.id);
    const items = [];
    for (const item of folded(roots.map((id) => ({ awaited: id, how: null })))) {
      if (drawn > TREE_NODES_DRAWN) break;
      items.push(item.edges ? foldedItem(item) : node(item.awaited));
    }
    for (const t of tree.tasks) { if (drawn > TREE_NODES_DRAWN) break; if (!seen.has(t.id)) items.push(node(t.id)); }
    const notes = [el("p", { class: "muted", text: `${tree.tasks.length} tasks, ${tree.edges.length} await edges.` })];
    if (drawn > TREE_NODES_DRAWN) notes.push(el("p", { class: "muted", text: `Only the first ${TREE_NODES_DRAWN} are drawn; the whole tree is at /api/v1/tree.` }));
    if (tree.cycles && tree.cycles.length) notes.push(el("p", { class: "state-cancelling", text: `${tree.cycles.length} await cycle(s): a deadlock (see Doctor).` }));
    this.box.replaceChildren(...notes, el("ul", {}, items));
  },
};

const lagView = {
  live: true,
  render(container) {
    this.chart = el("div", { id: "lag-chart" });
    this.stalls = el("div", { id: "stalls" });
    container.append(el("h2", { text: "Loop lag, last five minutes" }), this.chart, el("h3", { text: "Recent stalls (newest first)" }), this.stalls);
  },
  async update() {
    let lag;
    try {
      lag = await api("/api/v1/lag");
    } catch (error) {
      if (error.status !== 409) throw error;
      this.chart.replaceChildren(el("p", { class: "muted", text: error.message }));
      return;
    }
    const stalls = await api("/api/v1/stalls");
    this.chart.replaceChildren(lagChart(lag), el("p", { class: "muted", text:
      `Worst heartbeat lateness per second; the dashed line is the stall threshold (${seconds(lag.threshold)}). ${lag.stalls_total} stall(s) since the monitor started.` }));
    this.stalls.replaceChildren(stalls.stalls.length ? el("div", {}, stalls.stalls.map((s) => el("details", { class: "stall" },
      el("summary", {}, `${new Date(s.started_at * 1000).toLocaleTimeString()} · stuck ${seconds(s.duration)}`,
        s.task_id !== null ? [" in task ", taskLink(s.task_id, s.task_name || String(s.task_id))] : " (outside any task)"),
      stackBlock(s.stack)))) : el("p", { class: "muted", text: "No stalls remembered." }));
  },
};

function lagChart(lag) {
  const width = 720, height = 140, pad = 4;
  const now = lag.now, span = 300;
  const points = lag.history.map(([at, peak]) => [at, peak]);
  const top = Math.max(lag.threshold * 1.5, ...points.map((p) => p[1]));
  const x = (at) => pad + ((at - (now - span)) / span) * (width - 2 * pad);
  const y = (value) => height - pad - (value / top) * (height - 2 * pad);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  const line = document.createElementNS(svg.namespaceURI, "polyline");
  line.setAttribute("class", "line");
  line.setAttribute("points", points.map(([at, peak]) => `${x(at).toFixed(1)},${y(peak).toFixed(1)}`).join(" "));
  const threshold = document.createElementNS(svg.namespaceURI, "line");
  threshold.setAttribute("class", "threshold");
  threshold.setAttribute("x1", pad); threshold.setAttribute("x2", width - pad);
  threshold.setAttribute("y1", y(lag.threshold)); threshold.setAttribute("y2", y(lag.threshold));
  const title = document.createElementNS(svg.namespaceURI, "title");
  title.textContent = `peak ${seconds(Math.max(0, ...points.map((p) => p[1])))}`;
  svg.append(title, threshold, line);
  return svg;
}

const trendView = {
  live: true,
  render(container) {
    this.box = el("div", { id: "trend" });
    container.append(el("h2", { text: "Trend: tasks by group, last fifteen minutes" }), this.box);
  },
  async update() {
    let trend;
    try {
      trend = await api("/api/v1/trend");
    } catch (error) {
      if (error.status !== 409) throw error;
      this.box.replaceChildren(el("p", { class: "muted", text: error.message }));
      return;
    }
    if (!trend.samples.length) { this.box.replaceChildren(el("p", { class: "muted", text: "No census yet." })); return; }
    const keys = new Map(trend.groups.map((g) => [g.key, g]));
    const series = new Map();
    trend.samples.forEach((sample, index) => {
      for (const [key, count] of sample.groups) {
        if (!series.has(key)) series.set(key, new Array(trend.samples.length).fill(0));
        series.get(key)[index] = count;
      }
    });
    const rows = [...series.entries()].map(([key, counts]) => ({ group: keys.get(key), counts, change: counts[counts.length - 1] - counts[0] }))
      .sort((a, b) => Math.abs(b.change) - Math.abs(a.change) || b.counts[b.counts.length - 1] - a.counts[a.counts.length - 1]);
    const last = trend.samples[trend.samples.length - 1];
    this.box.replaceChildren(el("p", { class: "muted", text:
      `${last.total} tasks now; a census every ${trend.interval} s or more, ${trend.samples.length} kept. Largest change first.` }),
      el("table", { class: "tasks trend" }, el("thead", {}, el("tr", {}, ["Now", "Change", "Over time", "Coroutine", "Location"].map((h) => el("th", { text: h })))),
        el("tbody", {}, rows.map((row) => el("tr", {},
          el("td", { class: "num", text: row.counts[row.counts.length - 1] }),
          el("td", { class: "num", text: (row.change > 0 ? "+" : "") + row.change }),
          el("td", {}, sparkline(row.counts)),
          el("td", { text: row.group ? row.group.coro : "?" }),
          el("td", { class: "location", text: row.group ? place(row.group.location) : "" }))))));
  },
};

function sparkline(counts) {
  const width = 160, height = 24, pad = 2;
  const top = Math.max(1, ...counts);
  const x = (index) => pad + (counts.length > 1 ? index / (counts.length - 1) : 0) * (width - 2 * pad);
  const y = (value) => height - pad - (value / top) * (height - 2 * pad);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "sparkline");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  const line = document.createElementNS(svg.namespaceURI, "polyline");
  line.setAttribute("class", "line");
  line.setAttribute("points", counts.map((count, index) => `${x(index).toFixed(1)},${y(count).toFixed(1)}`).join(" "));
  const title = document.createElementNS(svg.namespaceURI, "title");
  title.textContent = `from ${counts[0]} to ${counts[counts.length - 1]} (peak ${top})`;
  svg.append(title, line);
  return svg;
}

const doctorView = {
  live: false,
  render(container) {
    this.box = el("div", { id: "doctor" });
    container.append(el("h2", { text: "Doctor" }), el("div", { class: "toolbar" }, el("button", { onclick: () => this.update() }, "Run again"),
      el("span", { class: "muted", text: "Deadlocks, stalls, lost wake-ups, leaks: read-only, without entering the loop." })), this.box);
  },
  async update() {
    this.box.replaceChildren(el("p", { class: "muted", text: "Examining…" }));
    const result = await api("/api/v1/doctor");
    if (!result.findings.length) {
      this.box.replaceChildren(el("p", { id: "no-problems", text: `No problems found in ${result.tasks} tasks.` }));
      return;
    }
    this.box.replaceChildren(el("p", { text: `${result.problems} problem(s) found in ${result.tasks} tasks, most urgent first.` }),
      result.findings.map((f) => el("div", { class: `finding ${f.severity}` }, el("strong", { text: `[${f.severity}] ${f.title}` }),
        el("pre", { text: f.evidence.join("\n") }), el("p", { class: "muted", text: `Why it matters: ${f.why}` }),
        f.task_ids.length ? el("p", {}, "Tasks: ", f.task_ids.map((id) => [taskLink(id), " "])) : null)));
  },
};

const sessionsView = {
  live: true,
  render(container) {
    this.table = el("table", { id: "sessions" });
    this.note = el("p", { class: "muted" });
    container.append(el("h2", { text: "Who is connected" }), this.table, this.note);
  },
  async update() {
    const data = await api("/api/v1/sessions");
    this.table.replaceChildren(el("thead", {}, el("tr", {}, ["peer", "kind", "connected for", "running"].map((h) => el("th", { text: h })))),
      el("tbody", {}, data.sessions.map((c) => el("tr", {}, el("td", { class: "code", text: c.peer }), el("td", { text: c.kind }),
        el("td", { class: "num", text: seconds(c.connected_for) }), el("td", { class: "code", text: c.running || "" })))));
    this.note.textContent = `${data.sessions.length} telnet session(s); ${data.web_connections} web connection(s) open, this page's included.`;
  },
};

// -- routing, refresh, the banner --------------------------------------------------

const VIEWS = { tasks: tasksView, task: taskView, ended: endedView, tree: treeView, lag: lagView, trend: trendView, doctor: doctorView, sessions: sessionsView };
let current = null;
let refreshing = false;
let firstWanted = false;

function route() {
  const [name, arg] = (location.hash.replace(/^#\/?/, "") || "tasks").split("/");
  const view = VIEWS[name] || tasksView;
  current = view;
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("current", link.dataset.view === (name === "task" ? "tasks" : name));
  const container = document.getElementById("view");
  container.replaceChildren();
  view.render(container, arg);
  refresh(true);
}

async function refresh(first) {
  if (refreshing) {  // a new view's first load runs once the refresh in flight ends
    firstWanted = firstWanted || first;
    return;
  }
  refreshing = true;
  try {
    await updateBanner();
    if (current && (first || current.live)) await current.update();
    if (document.getElementById("message").classList.contains("error")) say("");
  } catch (error) {
    say(error.status === 401 || error.status === 403 ? `No access (${error.message}): open monitor.web_url again.` : `The monitor did not answer: ${error.message}`, true);
  } finally {
    refreshing = false;
  }
  if (firstWanted) {
    firstWanted = false;
    refresh(true);
  }
}

async function updateBanner() {
  const status = await api("/api/v1/status");
  const banner = document.getElementById("banner");
  const parts = [];
  if (status.recorded) {
    const r = status.recorded;
    parts.push(el("div", { class: "recorded" }, el("strong", { text: `A bundle of pid ${r.pid}, taken ${r.taken}` }),
      el("span", { class: "muted", text: ` (${r.program}). A record of that moment: nothing here runs or changes.` })));
  }
  if (status.blocked) {
    const b = status.blocked;
    parts.push(el("strong", { text: `The app's loop ${status.recorded ? "had" : "has"} been blocked for ${seconds(b.for)}` }),
      b.task_id !== null ? [" in task ", taskLink(b.task_id, b.task_name || String(b.task_id))] : " (outside any task)",
      el("span", { class: "muted", text: status.recorded ? ". Blocking stack:" : ". This page is served by the monitor's own thread. Blocking stack:" }), stackBlock(b.stack));
  }
  banner.replaceChildren(...parts);
  banner.hidden = parts.length === 0;
}

let timer = null;
function schedule() {
  clearInterval(timer);
  const live = document.getElementById("live");
  if (document.hidden) { live.textContent = "paused"; live.classList.add("paused"); return; }
  live.textContent = "live"; live.classList.remove("paused");
  timer = setInterval(() => refresh(false), REFRESH_MS);
}

document.addEventListener("visibilitychange", () => { schedule(); if (!document.hidden) refresh(false); });
window.addEventListener("hashchange", route);
route();
schedule();
