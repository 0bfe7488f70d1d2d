// Screen 4, Sync history: what is failing now (grouped by cause, retry a group), the runs with
// filters and paging, and a run's detail (summary, timeline, errors with record ids, live
// progress while it runs, retry of the failed records).

import { api, integration } from "../api.js";
import { currentSession } from "../session.js";
import { actionButton, h, show, timeElement, toast } from "../ui.js";
import { integrationHeader, loadIntegration } from "./integration-header.js";

const STATUSES = ["running", "completed", "partial", "failed", "deferred", "interrupted"];
const PAGE = 25;

/** The history list. `query`: the filters from the address (`?status=…&from=…`). */
export async function historyScreen(slug, query = new URLSearchParams()) {
  const { provider, item } = await loadIntegration(slug);
  const failures = await api("GET", integration(slug, "/failures"));
  const table = h("tbody", {});
  const more = h("button", { type: "button", hidden: true }, "Show older runs");
  const empty = h("p", { class: "muted", hidden: true }, "No runs match these filters.");
  let before = null;

  const load = async () => {
    const params = new URLSearchParams(query);
    params.set("limit", String(PAGE));
    if (before) params.set("before", before);
    const page = await api("GET", integration(slug, `/sync-history?${params}`));
    page.runs.forEach((run) => table.append(runRow(slug, run)));
    before = page.next_before;
    more.hidden = !before;
    empty.hidden = table.children.length > 0;
  };
  more.addEventListener("click", () => load().catch((e) => toast(e.message, "bad")));

  show(integrationHeader(provider, item, "history"),
    failingNow(slug, failures),
    h("h2", {}, "Runs"),
    filterForm(slug, provider, query),
    h("div", { class: "scroll" }, h("table", { "aria-label": "Sync runs" },
      h("thead", {}, h("tr", {}, ["Started", "Direction", "Entity", "Synced", "Failed", "Conflicts", "Status", "Duration"]
        .map((c) => h("th", { scope: "col" }, c)))),
      table)),
    empty, more);
  await load();
}

function failingNow(slug, report) {
  if (report.groups.length === 0) {
    return h("section", { class: "panel", "aria-labelledby": "failing-title" },
      h("h2", { id: "failing-title" }, "What is failing now"), h("p", { class: "muted" }, "Nothing is failing."));
  }
  return h("section", { class: "panel stack", "aria-labelledby": "failing-title" },
    h("h2", { id: "failing-title" }, `What is failing now: ${report.total} record${report.total === 1 ? "" : "s"}`),
    report.groups.map((group) => h("details", { class: "group" },
      h("summary", {}, group.summary),
      h("ul", {}, group.samples.map((s) => h("li", {}, h("code", {}, s.record_id), ` — ${s.message}`,
        s.attempts > 1 ? h("span", { class: "muted" }, ` (${s.attempts} attempts)`) : null))),
      actionButton(`Retry these ${group.count}`, "member", async () => {
        try {
          const started = await api("POST", integration(slug, "/failures/retry"), group.cause);
          toast(`Retrying ${group.count} record${group.count === 1 ? "" : "s"} in ${started.runs.length} run${started.runs.length === 1 ? "" : "s"}.`);
        } catch (error) {
          toast(error.message, "bad");
        }
      }))));
}

function filterForm(slug, provider, query) {
  const day = (iso) => (iso ? iso.slice(0, 10) : "");
  const form = h("form", { class: "filters row", "aria-label": "Filter runs" },
    h("div", { class: "field" }, h("label", { for: "from" }, "From"),
      h("input", { id: "from", type: "date", value: day(query.get("from")) })),
    h("div", { class: "field" }, h("label", { for: "to" }, "To"),
      h("input", { id: "to", type: "date", value: day(query.get("to")) })),
    h("div", { class: "field" }, h("label", { for: "status" }, "Status"),
      h("select", { id: "status" }, h("option", { value: "" }, "Any"),
        STATUSES.map((s) => h("option", { value: s, selected: query.get("status") === s }, s)))),
    h("div", { class: "field" }, h("label", { for: "entity" }, "Entity"),
      h("select", { id: "entity" }, h("option", { value: "" }, "Any"),
        provider.entities.map((e) => h("option", { value: e.name, selected: query.get("entity") === e.name }, e.label)))),
    h("div", { class: "field" }, h("label", { for: "direction" }, "Direction"),
      h("select", { id: "direction" }, h("option", { value: "" }, "Any"),
        [["bidirectional", "Both ways"], ["push", "To the CRM"], ["pull", "From the CRM"]]
          .map(([v, l]) => h("option", { value: v, selected: query.get("direction") === v }, l)))),
    h("button", { type: "submit" }, "Apply"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    const from = form.querySelector("#from").value;
    const to = form.querySelector("#to").value;
    if (from) params.set("from", new Date(`${from}T00:00:00`).toISOString());
    if (to) params.set("to", new Date(new Date(`${to}T00:00:00`).getTime() + 86400000).toISOString());
    for (const key of ["status", "entity", "direction"]) {
      const value = form.querySelector(`#${key}`).value;
      if (value) params.set(key, value);
    }
    location.hash = `#/integrations/${slug}/history${params.size ? `?${params}` : ""}`;
  });
  return form;
}

function runRow(slug, run) {
  return h("tr", {},
    h("td", {}, h("a", { href: `#/integrations/${slug}/history/${run.run_id}` }, timeElement(run.started_at))),
    h("td", {}, direction(run.direction)),
    h("td", {}, run.entity ?? "several"),
    h("td", {}, String(run.success_count)),
    h("td", {}, String(run.failure_count)),
    h("td", {}, String(run.conflict_count)),
    h("td", {}, runBadge(run.status)),
    h("td", {}, duration(run.duration_ms)));
}

/** One run: summary, timeline, failed records, live progress, retry. */
export async function runScreen(slug, runId) {
  const { provider, item } = await loadIntegration(slug);
  const run = await api("GET", integration(slug, `/sync-runs/${runId}?outcome=failed&items_limit=200`));
  const live = h("p", { class: "muted", role: "status", "aria-live": "polite" });
  const failed = run.items;
  show(integrationHeader(provider, item, "history"),
    h("p", {}, h("a", { href: `#/integrations/${slug}/history` }, "← All runs")),
    h("section", { class: "panel stack", "aria-labelledby": "run-title" },
      h("h2", { id: "run-title" }, `${direction(run.direction)} · ${run.entity ?? "several entities"} `, runBadge(run.status)),
      h("dl", { class: "facts" },
        h("dt", {}, "Started"), h("dd", {}, timeElement(run.started_at), ` by ${run.started_by ?? "—"} (${run.trigger})`),
        h("dt", {}, "Duration"), h("dd", {}, duration(run.duration_ms)),
        h("dt", {}, "Records"), h("dd", {}, `${run.success_count} synced, ${run.failure_count} failed, `
          + `${run.conflict_count} conflicts, ${run.skipped_count} unchanged`
          + (run.estimated_records !== null ? ` (about ${run.estimated_records} expected)` : "")),
        run.error ? h("dt", {}, "Error") : null, run.error ? h("dd", { class: "error" }, run.error) : null),
      live,
      run.failure_count > 0 || run.status === "failed" || run.status === "interrupted"
        ? actionButton("Retry failed records", "member", async () => {
          try {
            const again = await api("POST", integration(slug, `/sync-runs/${runId}/retry`));
            location.hash = `#/integrations/${slug}/history/${again.run_id}`;
          } catch (error) {
            toast(error.message, "bad");
          }
        }, { class: "primary" })
        : null),
    h("h2", {}, "Timeline"),
    h("ol", { class: "timeline" }, run.timeline.map((p) => h("li", {}, `${p.phase}: `,
      duration(p.ended_at ? new Date(p.ended_at) - new Date(p.started_at) : Date.now() - new Date(p.started_at))))),
    h("h2", {}, `Failed records (${run.failure_count})`),
    failed.length === 0 ? h("p", { class: "muted" }, "None.") : h("div", { class: "scroll" }, h("table", { "aria-label": "Failed records" },
      h("thead", {}, h("tr", {}, ["Record", "CRM id", "Error"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, failed.map((i) => h("tr", {},
        h("td", {}, h("code", {}, i.record_id ?? "—")),
        h("td", {}, i.crm_id ? h("code", {}, i.crm_id) : "—"),
        h("td", {}, i.error?.message ?? "", i.error?.crm_code ? h("span", { class: "muted" }, ` (${i.error.crm_code})`) : null)))))));
  if (run.status === "running") follow(slug, runId, live);
}

/** Reads the run's progress stream (fetch, so the token goes in a header) until it ends. */
async function follow(slug, runId, live) {
  const here = location.hash;
  try {
    const response = await fetch(integration(slug, `/sync-runs/${runId}/events`), {
      headers: { Authorization: `Bearer ${currentSession().token}`, Accept: "text/event-stream" },
    });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done || location.hash !== here) break;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event === "progress" && data) {
          const p = JSON.parse(data);
          live.textContent = `Running: ${p.phase} — ${p.counts.succeeded} synced, ${p.counts.failed} failed so far`;
        }
        if (event === "end") {
          reader.cancel();
          if (location.hash === here) await runScreen(slug, runId);
          return;
        }
      }
    }
  } catch {
    live.textContent = "Live progress stopped; reload to see where the run stands.";
  }
}

function direction(d) {
  return { bidirectional: "Both ways", push: "To the CRM", pull: "From the CRM" }[d] ?? d;
}

function runBadge(status) {
  const kind = { completed: "ok", partial: "warn", deferred: "warn", running: "", failed: "bad", interrupted: "bad" }[status] ?? "";
  return h("span", { class: `badge ${kind}` }, status);
}

function duration(ms) {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}
