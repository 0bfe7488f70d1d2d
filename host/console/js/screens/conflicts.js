// Screen 5, Conflicts: the integration's conflicts (filtered, paged) and one conflict in a split
// view — the last agreed value, the app's and the CRM's, differing fields marked in words — where a
// person keeps a side or edits the merged value per field, resolves or ignores, or makes one side
// always win (for the record's fields, or for one field).

import { api, integration, ws } from "../api.js";
import { can, currentSession } from "../session.js";
import { actionButton, h, show, timeElement, toast } from "../ui.js";
import { integrationHeader, loadIntegration } from "./integration-header.js";

const PAGE = 20;

const STATUS = {
  pending: ["warn", "Waiting for you"],
  resolved: ["ok", "Resolved"],
  ignored: ["", "Ignored"],
};

function conflictBadge(status) {
  const [kind, label] = STATUS[status] ?? ["", status];
  return h("span", { class: `badge ${kind}` }, label);
}

/** The list. `query`: filters from the address (`?status=…&entity=…`). */
export async function conflictsScreen(slug, query = new URLSearchParams()) {
  const { provider, item } = await loadIntegration(slug);
  const status = query.get("status") ?? "pending";
  const entity = query.get("entity") ?? "";
  const rows = h("tbody", {});
  const more = h("button", { type: "button", hidden: true }, "Show more conflicts");
  const empty = h("p", { class: "muted", hidden: true },
    status === "pending" ? "No conflicts are waiting. Records changed on both sides will appear here." : "No conflicts match these filters.");
  const count = h("p", { class: "muted", "aria-live": "polite" });
  let before = null;

  const load = async () => {
    const params = new URLSearchParams({ integration: slug, limit: String(PAGE) });
    if (status !== "all") params.set("status", status);
    if (entity) params.set("entity", entity);
    if (before) params.set("before", before);
    const page = await api("GET", ws(`/conflicts?${params}`));
    page.conflicts.forEach((c) => rows.append(conflictRow(slug, c)));
    before = page.next_before;
    more.hidden = !before;
    empty.hidden = rows.children.length > 0;
    count.textContent = `Showing ${rows.children.length}${before ? " (more below)" : ""}.`;
  };
  more.addEventListener("click", () => load().catch((e) => toast(e.message, "bad")));

  const filters = h("form", { class: "row filters", "aria-label": "Filter conflicts" },
    h("div", { class: "field" }, h("label", { for: "conflict-status" }, "Status"),
      h("select", { id: "conflict-status", name: "status" },
        [["pending", "Waiting for you"], ["resolved", "Resolved"], ["ignored", "Ignored"], ["all", "All"]]
          .map(([value, label]) => h("option", { value, selected: status === value }, label)))),
    h("div", { class: "field" }, h("label", { for: "conflict-entity" }, "Record type"),
      h("select", { id: "conflict-entity", name: "entity" },
        h("option", { value: "" }, "All"),
        provider.entities.map((e) => h("option", { value: e.name, selected: entity === e.name }, e.label)))),
    h("button", { type: "submit" }, "Apply"));
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(filters);
    const next = new URLSearchParams();
    for (const [k, v] of data.entries()) if (v) next.set(k, String(v));
    location.hash = `#/integrations/${slug}/conflicts?${next}`;
  });

  show(integrationHeader(provider, item, "conflicts"),
    h("p", { class: "hint" }, "A conflict is a record changed on both sides since they last agreed, where the settings ask a person to decide."),
    filters,
    h("div", { class: "scroll" }, h("table", { "aria-label": "Conflicts" },
      h("thead", {}, h("tr", {}, ["Record", "Type", "Fields that differ", "Found", "Status", ""].map((c) => h("th", { scope: "col" }, c)))),
      rows)),
    empty, count, more);
  await load();
}

function conflictRow(slug, conflict) {
  return h("tr", { "data-record": conflict.record_id },
    h("th", { scope: "row" }, h("code", {}, conflict.record_id)),
    h("td", {}, conflict.entity),
    h("td", {}, conflict.conflicting_fields.join(", ")),
    h("td", {}, timeElement(conflict.created_at)),
    h("td", {}, conflictBadge(conflict.status)),
    h("td", {}, h("a", { href: `#/integrations/${slug}/conflicts/${conflict.conflict_id}`,
      "aria-label": `${conflict.status === "pending" ? "Review" : "Open"} the conflict on ${conflict.record_id}` },
    conflict.status === "pending" ? "Review" : "Open")));
}

/** One conflict in the split view. */
export async function conflictScreen(slug, conflictId) {
  const { provider, item } = await loadIntegration(slug);
  const conflict = await api("GET", ws(`/conflicts/${conflictId}`));
  const view = new SplitView(slug, provider, conflict);
  show(integrationHeader(provider, item, "conflicts"), view.element);
}

/** Shows a value as text: empty and missing are told apart from the text "null". */
function shown(value) {
  if (value === undefined) return h("span", { class: "muted" }, "not synced");
  if (value === null || value === "") return h("span", { class: "muted" }, "empty");
  return String(value);
}

class SplitView {
  constructor(slug, provider, conflict) {
    Object.assign(this, { slug, provider, conflict });
    this.pending = conflict.status === "pending";
    this.admin = can(currentSession(), "admin");
    this.error = h("div", { role: "alert" });
    const fields = [...new Set([...Object.keys(conflict.app_values), ...Object.keys(conflict.crm_values)])];
    // Conflicting fields first: they are what the person came for.
    fields.sort((a, b) => Number(conflict.conflicting_fields.includes(b)) - Number(conflict.conflicting_fields.includes(a)));
    this.choices = new Map();
    const base = conflict.base_values ?? {};
    const body = h("tbody", {}, fields.map((field) => this.fieldRow(field, base)));
    this.element = h("div", { class: "stack" },
      h("p", {}, h("a", { href: `#/integrations/${slug}/conflicts` }, "← All conflicts")),
      h("div", { class: "row" },
        h("h2", {}, `${conflict.entity} `, h("code", {}, conflict.record_id)), conflictBadge(conflict.status)),
      h("p", { class: "muted" }, `${provider.name} record `, h("code", {}, conflict.crm_id ?? "—"), " · found ",
        timeElement(conflict.created_at),
        conflict.resolved_by ? ` · ${conflict.status} by ${conflict.resolved_by} ` : "",
        conflict.resolved_at ? timeElement(conflict.resolved_at) : ""),
      this.error,
      h("div", { class: "scroll" }, h("table", { class: "split", "aria-label": "The record on both sides" },
        h("thead", {}, h("tr", {}, ["Field", "Last agreed", "Your app", provider.name, this.pending ? "Keep" : "Result"]
          .map((c) => h("th", { scope: "col" }, c)))),
        body)),
      this.pending ? this.actions() : null);
  }

  fieldRow(field, base) {
    const c = this.conflict;
    const differs = c.conflicting_fields.includes(field);
    const cells = [
      h("th", { scope: "row" }, h("code", {}, field), differs ? h("span", { class: "badge warn" }, "differs") : null),
      h("td", {}, shown(base[field])),
      h("td", { class: differs ? "side" : undefined }, shown(c.app_values[field])),
      h("td", { class: differs ? "side" : undefined }, shown(c.crm_values[field])),
    ];
    if (!this.pending) {
      cells.push(h("td", {}, differs && c.resolution && field in c.resolution ? shown(c.resolution[field]) : ""));
    } else if (!differs) {
      cells.push(h("td", { class: "muted" }, "same on both sides"));
    } else {
      cells.push(h("td", {}, this.picker(field)));
    }
    return h("tr", { class: differs ? "differs" : undefined, "data-field": field }, cells);
  }

  /** Keep app / keep CRM / edit, and "always use the CRM" for this field. */
  picker(field) {
    const name = `pick-${field}`;
    const merged = h("input", { type: "text", id: `merged-${field}`, "aria-label": `Merged value of ${field}`,
      value: this.conflict.app_values[field] ?? "", hidden: true });
    const choice = { pick: "app", merged };
    this.choices.set(field, choice);
    const radio = (value, label) => h("label", { class: "inline" },
      h("input", { type: "radio", name, value, checked: value === "app",
        onchange: () => { choice.pick = value; merged.hidden = value !== "edit"; if (value === "edit") merged.focus(); } }),
      label);
    return h("div", { class: "stack" },
      h("fieldset", { class: "bare" }, h("legend", { class: "sr-only" }, `Keep which value of ${field}`),
        h("div", { class: "row" }, radio("app", "App"), radio("crm", this.provider.name), radio("edit", "Edit"))),
      merged,
      actionButton(`Always use ${this.provider.name} for ${field}`, "admin", () => this.alwaysForField(field, "crm"),
        { class: "link" }));
  }

  actions() {
    const applyToPending = h("input", { type: "checkbox", id: "apply-to-pending", checked: true });
    this.applyToPending = applyToPending;
    return h("div", { class: "panel stack" },
      h("div", { class: "row" },
        actionButton("Resolve", "member", () => this.resolve(), { class: "primary" }),
        actionButton("Ignore", "member", () => this.ignore(), { title: "Dismiss it: nothing is written; the next sync merges the record again." }),
        actionButton("Always use app", "admin", () => this.always("always_use_app")),
        actionButton(`Always use ${this.provider.name}`, "admin", () => this.always("always_use_crm"))),
      h("label", { class: "inline" }, applyToPending,
        "With “always”, also settle the other conflicts waiting on the same fields"),
      h("p", { class: "hint" }, "Resolve writes the kept values to both sides. “Always” also makes that side win these fields in future syncs."));
  }

  body() {
    const picks = [...this.choices.entries()];
    if (picks.some(([, c]) => c.pick === "edit")) {
      const values = {};
      for (const [field, c] of picks) {
        values[field] = c.pick === "edit" ? c.merged.value
          : (c.pick === "crm" ? this.conflict.crm_values : this.conflict.app_values)[field] ?? null;
      }
      return { values };
    }
    return { fields: Object.fromEntries(picks.map(([field, c]) => [field, c.pick])) };
  }

  async resolve() {
    await this.send(() => api("POST", ws(`/conflicts/${this.conflict.conflict_id}/resolve`), this.body()),
      "Resolved: the kept values were written to both sides.");
  }

  async ignore() {
    await this.send(() => api("POST", ws(`/conflicts/${this.conflict.conflict_id}/ignore`)),
      "Ignored: nothing was written; the next sync merges the record again.");
  }

  async always(resolution) {
    const body = { resolution, apply_to_pending: this.applyToPending.checked };
    const side = resolution === "always_use_app" ? "your app" : this.provider.name;
    await this.send(() => api("POST", ws(`/conflicts/${this.conflict.conflict_id}/resolve`), body),
      `Resolved: ${side} now always wins ${this.conflict.conflicting_fields.join(", ")}.`);
  }

  /** A field rule from the conflict: this field always takes `side`; conflicts it decides settle. */
  async alwaysForField(field, side) {
    const path = integration(this.slug, `/conflict-rules/${encodeURIComponent(this.conflict.entity)}/${encodeURIComponent(field)}`);
    try {
      const change = await api("PUT", path, { use: side, apply_to_pending: true });
      const settled = change.settled.length;
      toast(`${this.provider.name} now always wins ${field}.${settled ? ` ${settled} waiting conflict${settled === 1 ? " was" : "s were"} settled.` : ""}`);
      await conflictScreen(this.slug, this.conflict.conflict_id);
    } catch (error) {
      this.error.replaceChildren(h("p", { class: "notice bad" }, error.message));
    }
  }

  async send(request, done) {
    this.error.replaceChildren();
    try {
      await request();
      toast(done);
      location.hash = `#/integrations/${this.slug}/conflicts`;
    } catch (error) {
      this.error.replaceChildren(h("p", { class: "notice bad" }, error.message));
    }
  }
}
