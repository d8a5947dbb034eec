// community pulse dashboard: reads /api/dashboard every few seconds and draws the panels.
//
// Every piece of data reaches the page through textContent or a checked https:// link, never as HTML:
// comment texts, ids and names are other people's input. Script errors are counted on <body
// data-errors> and listed in #script-errors, so a test (and a person) can see that none happened.
"use strict";

(function () {
  const errors = [];
  function recordError(message) {
    errors.push(String(message));
    document.body.dataset.errors = String(errors.length);
    const box = document.getElementById("script-errors");
    box.textContent = errors.join("\n");
    box.hidden = false;
  }
  window.addEventListener("error", (event) => recordError(event.message || "script error"));
  window.addEventListener("unhandledrejection", (event) =>
    recordError((event.reason && event.reason.message) || event.reason || "unhandled rejection"));

  const PLATFORMS = { vk: "VK", telegram: "Telegram", facebook: "Facebook", instagram: "Instagram", sim: "Simulated" };
  const KINDS = {
    unanswered_comment: { label: "Unanswered", css: "bad" },
    at_risk: { label: "At risk", css: "warn" },
    resolved: { label: "Answered", css: "good" },
  };
  const STATUS = {
    past_sla: { label: "Past SLA", css: "bad" },
    due_soon: { label: "Due soon", css: "warn" },
    ok: { label: "Within SLA", css: "good" },
  };
  const COLORS = ["#2563eb", "#db2777", "#059669", "#d97706", "#7c3aed", "#0891b2", "#64748b"];
  const METRICS = ["likes", "comments", "reposts"];

  // --- building the DOM, text only -------------------------------------------------------------------
  function el(tag, props, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "class") node.className = value;
      else if (key === "title") node.title = String(value);
      else node.setAttribute(key, String(value));
    }
    for (const child of children || []) if (child) node.append(child);
    return node;
  }
  function link(url, label) {
    if (typeof url === "string" && url.startsWith("https://")) {
      return el("a", { href: url, text: label, target: "_blank", rel: "noopener noreferrer" });
    }
    return el("span", { text: label });
  }
  function replace(id, nodes) {
    document.getElementById(id).replaceChildren(...nodes);
  }
  function show(id, visible) {
    document.getElementById(id).hidden = !visible;
  }

  // --- numbers and times -----------------------------------------------------------------------------
  function human(seconds) {  // 45s, 12m, 1h 05m, 2d 3h: as the alert messages write them
    if (seconds === null || seconds === undefined) return "–";
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return s + "s";
    const minutes = Math.floor(s / 60) % 60, hours = Math.floor(s / 3600) % 24, days = Math.floor(s / 86400);
    if (days) return days + "d " + hours + "h";
    return hours ? hours + "h " + String(minutes).padStart(2, "0") + "m" : minutes + "m";
  }
  function pct(value) {
    return value === null || value === undefined ? "–" : Number(value).toFixed(value % 1 ? 1 : 0) + "%";
  }
  function count(value) {
    return Number(value || 0).toLocaleString("en");
  }
  const TIME = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", timeZone: "UTC" });
  const DAY = new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "short", timeZone: "UTC" });
  const YEAR = new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
  function clock(iso, nowIso) {  // 11:30, or 19 Nov 23:00 when not the day of "now"
    const at = new Date(iso);
    const sameDay = nowIso && DAY.format(at) === DAY.format(new Date(nowIso));
    return (sameDay ? "" : DAY.format(at) + " ") + TIME.format(at);
  }
  function where(item) {
    return (PLATFORMS[item.platform] || item.platform) + " " + item.community_id;
  }

  // --- panels ----------------------------------------------------------------------------------------
  function renderNow(now) {
    const node = document.getElementById("now");
    const at = new Date(now.at);
    node.replaceChildren(
      el("span", { class: "label", text: "Now " }),
      el("strong", { text: YEAR.format(at) + ", " + TIME.format(at) + " UTC" }),
      el("span", { class: "basis " + (now.basis === "wall clock" ? "live" : "replay"),
                   text: now.basis === "wall clock" ? "live" : "event time of the newest data" }),
    );
    node.title = "“Now” is " + now.explained;
  }

  function renderKpis(data) {
    const rows = data.keeping_up.communities;
    const comments = rows.reduce((n, r) => n + r.comments, 0);
    const answered = rows.reduce((n, r) => n + r.answered, 0);
    const alertsToday = Object.values(data.alerts.today).reduce((n, v) => n + v, 0);
    const kpi = (label, value, note, css) =>
      el("div", { class: "kpi " + (css || "") }, [el("div", { class: "kpi-value", text: value }),
        el("div", { class: "kpi-label", text: label }), note ? el("div", { class: "kpi-note", text: note }) : null]);
    replace("kpis", [
      kpi("waiting for an answer", count(data.waiting.total), null, data.waiting.total ? "" : "good"),
      kpi("past the SLA", count(data.waiting.past_sla), null, data.waiting.past_sla ? "bad" : "good"),
      kpi("answered today", count(answered), "of " + count(comments) + " comments"),
      kpi("response rate today", comments ? pct(Math.round((answered / comments) * 1000) / 10) : "–"),
      kpi("alerts today", count(alertsToday)),
    ]);
  }

  function renderWaiting(waiting, nowIso) {
    const shown = waiting.comments.length;
    document.getElementById("waiting-summary").textContent = waiting.total
      ? count(waiting.total) + " comments, " + count(waiting.past_sla) + " past SLA · oldest first" +
        (shown < waiting.total ? " · showing " + shown : "")
      : "";
    replace("waiting", waiting.comments.map((c) => {
      const status = STATUS[c.status] || STATUS.ok;
      const share = Math.min(1, c.sla_s > 0 ? c.waited_s / c.sla_s : 1);
      return el("li", { class: "comment " + status.css, "data-comment-id": c.comment_id, "data-status": c.status }, [
        el("div", { class: "comment-head" }, [
          el("span", { class: "badge " + status.css, text: status.label }),
          el("strong", { class: "waited", text: human(c.waited_s) }),
          el("span", { class: "muted", text: " waiting · SLA " + human(c.sla_s) }),
        ]),
        el("div", { class: "meter", title: Math.round(share * 100) + "% of the SLA" }, [
          el("span", { class: status.css, style: null }),
        ]),
        el("blockquote", { class: "snippet", text: c.snippet || "(no text)" }),
        el("div", { class: "meta" }, [
          el("span", { text: where(c) }), " · ",
          link(c.post_url, "post " + c.post_id), " · ",
          el("span", { text: c.author_id || "unknown author" }), " · ",
          el("time", { datetime: c.commented_at, text: clock(c.commented_at, nowIso) }),
        ]),
      ]);
    }));
    // The meters' widths, set through the CSSOM (allowed by the page's Content-Security-Policy).
    document.querySelectorAll("#waiting .meter > span").forEach((bar, i) => {
      const c = waiting.comments[i];
      bar.style.width = Math.round(Math.min(1, c.sla_s > 0 ? c.waited_s / c.sla_s : 1) * 100) + "%";
    });
    show("waiting-empty", waiting.total === 0);
  }

  function renderKeepingUp(keeping) {
    document.getElementById("keeping-since").textContent = "since " + TIME.format(new Date(keeping.since)) + " UTC";
    const cell = (text, css) => el("td", { class: "num " + (css || ""), text: text });
    document.querySelector("#keeping-up tbody").replaceChildren(...keeping.communities.map((r) =>
      el("tr", { "data-community-id": r.community_id }, [
        el("th", { scope: "row", text: r.community_id }),
        cell(count(r.comments), "opt"),
        cell(count(r.answered), "opt"),
        cell(pct(r.response_rate_pct)),
        cell(pct(r.within_sla_pct)),
        cell(human(r.median_s)),
        cell(human(r.p90_s)),
        cell(count(r.past_sla), r.past_sla ? "bad-text" : ""),
      ])));
  }

  function renderAlerts(alerts, nowIso) {
    replace("alerts-today", Object.entries(KINDS).map(([kind, info]) =>
      el("span", { class: "chip " + info.css, text: info.label + " today: " + count(alerts.today[kind]) })));
    replace("alerts", alerts.latest.map((a) => {
      const info = KINDS[a.kind] || { label: a.kind, css: "" };
      const took = a.response_s === null ? a.waited_s : a.response_s;
      const title = a.kind === "resolved"  // as the alert messages put it (pipeline/notify/messages.py)
        ? "answered after " + human(took) + (took > a.sla_s ? " (late)" : "") + ", SLA " + human(a.sla_s)
        : a.kind === "at_risk" ? "waiting " + human(a.waited_s) + " of " + human(a.sla_s) + " SLA"
        : "unanswered for " + human(a.waited_s) + ", SLA " + human(a.sla_s);
      return el("li", { class: "alert " + info.css, "data-kind": a.kind, "data-comment-id": a.comment_id }, [
        el("div", { class: "alert-head" }, [
          el("span", { class: "badge " + info.css, text: info.label }),
          el("span", { text: title }),
          el("time", { class: "muted", datetime: a.fired_at, text: clock(a.fired_at, nowIso) }),
        ]),
        el("div", { class: "snippet small", text: a.snippet || "(no text)" }),
        el("div", { class: "meta" }, [el("span", { text: where(a) }), " · ", link(a.post_url, "post " + a.post_id)]),
      ]);
    }));
    show("alerts-empty", alerts.latest.length === 0);
  }

  const charts = {};
  function chartWidth(node) {
    return Math.max(200, node.clientWidth || 300);
  }
  function renderEngagement(engagement) {
    document.getElementById("engagement-since").textContent =
      "since " + TIME.format(new Date(engagement.since)) + " UTC, by community";
    const names = engagement.series.map((s) => s.name);
    replace("engagement-legend", names.map((name, i) =>
      el("span", { class: "key" }, [el("i", { class: "swatch c" + (i % COLORS.length) }), el("span", { text: name })])));
    for (const metric of METRICS) {
      const node = document.getElementById("chart-" + metric);
      const data = [engagement.minutes, ...engagement.series.map((s) => s[metric])];
      const key = names.join("\u0000");
      const existing = charts[metric];
      if (existing && existing.key === key) {
        existing.plot.setData(data);
        continue;
      }
      if (existing) existing.plot.destroy();
      const options = {
        width: chartWidth(node),
        height: 170,
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        scales: { y: { range: (u, min, max) => [0, Math.max(1, max)] } },
        axes: [{ stroke: "#64748b", grid: { stroke: "#eef2f7" }, size: 30,
                 values: (u, splits) => splits.map((s) => TIME.format(new Date(s * 1e3))) },
               { stroke: "#64748b", grid: { stroke: "#eef2f7" }, size: 40 }],
        series: [{}, ...names.map((name, i) => ({ label: name, stroke: COLORS[i % COLORS.length], width: 1.5,
          points: { show: false } }))],
      };
      charts[metric] = { key: key, plot: new uPlot(options, data, node) };
    }
  }
  window.addEventListener("resize", () => {
    for (const metric of METRICS) {
      const chart = charts[metric];
      if (chart) chart.plot.setSize({ width: chartWidth(document.getElementById("chart-" + metric)), height: 170 });
    }
  });

  function renderTopPosts(engagement) {
    document.getElementById("top-since").textContent =
      "engagement since " + TIME.format(new Date(engagement.top_posts_since)) + " UTC";
    document.querySelector("#top-posts tbody").replaceChildren(...engagement.top_posts.map((p) =>
      el("tr", { "data-post-id": p.post_id }, [
        el("th", { scope: "row" }, [link(p.post_url, "post " + p.post_id), el("span", { class: "muted", text: " · " + where(p) })]),
        el("td", { class: "num", text: count(p.likes) }),
        el("td", { class: "num", text: count(p.comments) }),
        el("td", { class: "num", text: count(p.reposts) }),
        el("td", { class: "num strong", text: Number(p.score).toLocaleString("en") }),
      ])));
    show("top-empty", engagement.top_posts.length === 0);
  }

  // --- the refresh loop ------------------------------------------------------------------------------
  const refreshMs = Number(document.body.dataset.refreshMs) || 2000;
  let lastGood = 0;

  function problem(text) {
    const banner = document.getElementById("problem");
    banner.textContent = text || "";
    banner.hidden = !text;
  }
  function status() {
    const node = document.getElementById("status");
    if (!lastGood) { node.textContent = "connecting…"; return; }
    const age = (Date.now() - lastGood) / 1000;
    node.textContent = age > 3 * refreshMs / 1000 ? "last updated " + human(age) + " ago" : "updated every " + human(refreshMs / 1000);
    node.className = "status " + (age > 3 * refreshMs / 1000 ? "stale" : "fresh");
  }

  async function refresh() {
    try {
      let response;
      try {
        response = await fetch("/api/dashboard", { cache: "no-store" });
      } catch (error) {  // the network: the server stopped, or the machine went away
        problem("The dashboard server does not answer (" + error.message + "). Retrying…");
        return;
      }
      if (!response.ok) {
        let detail = response.status + " " + response.statusText;
        try {
          detail = (await response.json()).error || detail;
        } catch (error) {
          // not JSON (a proxy's page, a crash): the status says it
        }
        problem("The warehouse cannot be read right now: " + detail + ". Retrying…");
        return;
      }
      const body = await response.json();
      renderNow(body.now);
      renderKpis(body);
      renderWaiting(body.waiting, body.now.at);
      renderKeepingUp(body.keeping_up);
      renderAlerts(body.alerts, body.now.at);
      renderEngagement(body.engagement);
      renderTopPosts(body.engagement);
      problem(null);
      lastGood = Date.now();
      document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes) + 1);
    } finally {
      status();
      setTimeout(() => refresh().catch(recordError), refreshMs);
    }
  }
  refresh().catch(recordError);
})();
