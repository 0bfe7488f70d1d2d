// Screen 3, Field mappings: entity tabs; the mappings of one entity as a table (CRM field · app
// field · direction · transform · actions); Auto-map from the API's suggestions; add and edit in a
// dialog with searchable pickers, a transform and (for lookups and associations) the record type
// the field refers to; a preview on real records with the CRM's
// required fields left unmapped highlighted. Changes collect in a draft (kept per entity while the
// page is open) until "Save mappings"; API errors are shown beside the field or row they name.

import { api, integration } from "../api.js";
import { can, currentSession } from "../session.js";
import { actionButton, confirmDialog, h, show, toast } from "../ui.js";
import { integrationHeader, loadIntegration } from "./integration-header.js";

const DIRECTIONS = [
  ["both", "⇄ Both ways"],
  ["pull", "← From the CRM"],
  ["push", "→ To the CRM"],
  ["none", "Not synced"],
];

const TRANSFORMS = [
  ["", "None"],
  ["trim", "Trim spaces"],
  ["lowercase", "Lower-case"],
  ["uppercase", "Upper-case"],
  ["digits_only", "Digits only"],
  ["value_map", "Translate values…"],
  ["date_format", "Date format…"],
];

const KEY_STAYS = "Records are matched on this field, so it stays mapped.";

/** Unsaved drafts by `slug/entity`, so switching entity tabs loses nothing. */
const drafts = new Map();

/** Draws the screen for `entity` (default: the integration's first). */
export async function mappingsScreen(slug, entityName) {
  const { provider, item } = await loadIntegration(slug);
  const all = await api("GET", integration(slug, "/field-mappings"));
  const entity = all.entities.find((e) => e.entity === entityName) ?? all.entities[0];
  if (!entity) throw new Error(`${provider.name} offers nothing to map.`);
  const label = (name) => provider.entities.find((e) => e.name === name)?.label ?? name;
  const key = `${slug}/${entity.entity}`;
  const draft = drafts.get(key) ?? freshDraft(entity);
  const crmFields = await loadCrmFields(slug, entity.entity);
  const page = new MappingsPage({ slug, provider, entity, draft, crmFields, key });

  show(integrationHeader(provider, item, "mappings"),
    h("nav", { class: "subtabs", "aria-label": "Record types" },
      all.entities.map((e) => h("a", {
        href: `#/integrations/${slug}/mappings/${e.entity}`,
        "aria-current": e.entity === entity.entity ? "page" : undefined,
      }, label(e.entity), drafts.has(`${slug}/${e.entity}`) ? " •" : ""))),
    page.element);
  page.render();
  if (!crmFields.error) await page.preview();
}

function freshDraft(entity) {
  return {
    source: entity.source,
    dirty: false,
    rows: entity.mappings.map((m) => ({ ...m, error: "" })),
  };
}

async function loadCrmFields(slug, entity) {
  try {
    const answer = await api("GET", integration(slug, `/fields?entity=${encodeURIComponent(entity)}`));
    return { fields: answer.fields, error: null };
  } catch (error) {
    return { fields: [], error: error.message };
  }
}

/** The state and drawing of one entity's mappings. */
class MappingsPage {
  constructor({ slug, provider, entity, draft, crmFields, key }) {
    Object.assign(this, { slug, provider, entity, draft, crmFields, key });
    this.admin = can(currentSession(), "admin");
    this.appFields = new Set(draft.rows.map((r) => r.app_field));
    this.general = h("div", { id: "mappings-error", role: "alert" });
    this.status = h("p", { class: "muted", id: "mappings-status", "aria-live": "polite" });
    this.required = h("div", { id: "required-unmapped" });
    this.table = h("div", { class: "scroll" });
    this.previewArea = h("section", { class: "stack", "aria-labelledby": "preview-title" });
    this.element = h("div", { class: "stack" },
      crmFields.error ? h("p", { class: "notice bad", role: "alert" },
        `The CRM's fields could not be read, so the pickers are empty: ${crmFields.error}`) : null,
      h("div", { class: "row spread" },
        this.status,
        h("div", { class: "row" },
          actionButton("Auto-map", "member", () => this.autoMap(), { title: "Suggest mappings from your app's fields" }),
          actionButton("Add mapping", "admin", () => this.edit(null)),
          actionButton("Preview", "member", () => this.preview()),
          actionButton("Reset to defaults", "admin", () => this.reset()),
          actionButton("Save mappings", "admin", () => this.save(), { class: "primary" }))),
      this.general, this.required, this.table, this.previewArea);
  }

  entityLabel(name) {
    return this.provider.entities.find((e) => e.name === name)?.label ?? name;
  }

  fieldInfo(name) {
    return this.crmFields.fields.find((f) => f.name === name);
  }

  /** Redraws the status line and the table from the draft. */
  render() {
    const rows = this.draft.rows;
    this.status.textContent = this.draft.dirty ? "Unsaved changes: preview them, then save."
      : this.draft.source === "default" ? `Using ${this.provider.name}'s default mappings.`
        : "Using this workspace's own mappings.";
    this.table.replaceChildren(h("table", { "aria-label": `${this.entity.entity} field mappings` },
      h("thead", {}, h("tr", {}, ["CRM field", "App field", "Direction", "Transform", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.length === 0
        ? h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No mappings. Auto-map or add one."))
        : rows.map((row, index) => this.rowElement(row, index)))));
  }

  rowElement(row, index) {
    const info = this.fieldInfo(row.crm_field);
    const isKey = row.crm_field === this.entity.match_key;
    return h("tr", { class: row.error ? "flagged" : undefined, "data-app-field": row.app_field },
      h("td", {},
        info && info.label !== row.crm_field ? [h("b", {}, info.label), " "] : null, h("code", {}, row.crm_field),
        isKey ? h("span", { class: "badge" }, "match key") : null,
        row.error ? h("p", { class: "error", role: "alert" }, row.error) : null),
      h("td", {}, h("code", {}, row.app_field),
        row.references ? [" ", h("span", { class: "badge", title: "Holds the id of a workspace record of this type" },
          `→ ${this.entityLabel(row.references)}`)] : null,
        row.suggested ? h("p", { class: "hint" }, `Suggested (${Math.round(row.suggested.confidence * 100)}%): ${row.suggested.reason}`) : null),
      h("td", {}, DIRECTIONS.find(([d]) => d === (row.direction ?? "both"))?.[1] ?? row.direction),
      h("td", {}, describeTransform(row.transform)),
      h("td", {}, h("div", { class: "row" },
        actionButton("Edit", "admin", () => this.edit(index), { "aria-label": `Edit the mapping of ${row.app_field}` }),
        isKey
          ? h("button", { type: "button", "aria-disabled": "true", title: KEY_STAYS,
            "aria-label": `Remove the mapping of ${row.app_field} (not possible: it is the match key)`,
            onclick: () => toast(KEY_STAYS, "warn") }, "Remove")
          : actionButton("Remove", "admin", () => this.remove(index), { "aria-label": `Remove the mapping of ${row.app_field}` }))));
  }

  changed() {
    this.draft.dirty = true;
    drafts.set(this.key, this.draft);
    this.render();
  }

  /** Adds the API's suggestions for fields the draft does not map yet. */
  async autoMap() {
    const answer = await this.call(() => api("POST", integration(this.slug, "/field-mappings/suggest"), { entity: this.entity.entity }));
    if (!answer) return;
    const mappedApp = new Set(this.draft.rows.map((r) => r.app_field));
    const mappedCrm = new Set(this.draft.rows.map((r) => r.crm_field));
    let added = 0;
    for (const s of answer.suggestions) {
      if (mappedApp.has(s.app_field) || mappedCrm.has(s.crm_field)) continue;
      this.draft.rows.push({ app_field: s.app_field, crm_field: s.crm_field, direction: s.direction,
        transform: s.transform, error: "", suggested: { confidence: s.confidence, reason: s.reason } });
      mappedApp.add(s.app_field);
      mappedCrm.add(s.crm_field);
      added += 1;
    }
    answer.unmatched_app_fields.forEach((f) => this.appFields.add(f));
    answer.suggestions.forEach((s) => this.appFields.add(s.app_field));
    if (added > 0) this.changed();
    const unmatched = answer.unmatched_app_fields.length;
    toast(added > 0
      ? `Auto-map added ${added} mapping${added === 1 ? "" : "s"}. Review them in the preview, then save.`
      : "Auto-map found nothing new: every field it recognises is already mapped.");
    if (unmatched > 0) {
      this.general.replaceChildren(h("p", { class: "notice warn" },
        `No CRM field was found for ${unmatched} of your app's fields: ${answer.unmatched_app_fields.join(", ")}. Add them by hand if they should sync.`));
    }
    await this.preview();
  }

  async remove(index) {
    this.draft.rows.splice(index, 1);
    this.changed();
    await this.preview();
  }

  async reset() {
    const ok = await confirmDialog("Go back to the default mappings?",
      `This workspace's mappings of ${this.entity.entity} are replaced by ${this.provider.name}'s defaults.`, "Use the defaults");
    if (!ok) return;
    const saved = await this.call(() => api("PUT", integration(this.slug, "/field-mappings"), { entity: this.entity.entity, mappings: [] }));
    if (!saved) return;
    this.adopt(saved);
    toast("The default mappings are back in force.");
    await this.preview();
  }

  /** Writes the draft; errors land on the row they name. */
  async save() {
    this.clearErrors();
    try {
      const saved = await api("PUT", integration(this.slug, "/field-mappings"), { entity: this.entity.entity, mappings: this.payload() });
      this.adopt(saved);
      toast("Mappings saved.");
      await this.preview();
    } catch (error) {
      this.showError(error);
      toast("The mappings were not saved: see the message beside the mapping.", "bad");
    }
  }

  adopt(saved) {
    drafts.delete(this.key);
    this.entity = saved;
    this.draft = freshDraft(saved);
    this.render();
    document.querySelector(".subtabs a[aria-current='page']")?.replaceChildren(document.createTextNode(
      this.provider.entities.find((e) => e.name === saved.entity)?.label ?? saved.entity));
  }

  payload(rows = this.draft.rows) {
    // A reference (set through the API) travels with its row, so saving here keeps it.
    return rows.map((r) => ({ app_field: r.app_field, crm_field: r.crm_field, direction: r.direction ?? "both",
      ...(r.transform ? { transform: r.transform } : {}), ...(r.references ? { references: r.references } : {}) }));
  }

  clearErrors() {
    this.general.replaceChildren();
    this.draft.rows.forEach((r) => { r.error = ""; });
    this.render();
  }

  /** Puts an API error beside the row it names (`mappings[3]…` or a field in backticks). */
  showError(error) {
    const index = rowOfError(error.message, this.draft.rows);
    if (index === null) {
      this.general.replaceChildren(h("p", { class: "notice bad" }, error.message));
    } else {
      this.draft.rows[index].error = error.message;
      this.render();
    }
  }

  /** Runs an API call; a failure is shown on the page and yields null. */
  async call(request) {
    this.general.replaceChildren();
    try {
      return await request();
    } catch (error) {
      this.showError(error);
      return null;
    }
  }

  /** Shows the draft applied to a few real records of each side; nothing is written. */
  async preview() {
    const body = { entity: this.entity.entity, mappings: this.payload() };
    let result;
    try {
      result = await api("POST", integration(this.slug, "/field-mappings/preview"), body);
    } catch (error) {
      this.previewArea.replaceChildren(h("h2", { id: "preview-title" }, "Preview"),
        h("p", { class: "notice bad", role: "alert" }, `No preview: ${error.message}`));
      return;
    }
    this.showRequired(result.required_unmapped);
    const pulled = this.draft.rows.filter((r) => ["both", "pull"].includes(r.direction ?? "both")).map((r) => r.app_field);
    const pushed = this.draft.rows.filter((r) => ["both", "push"].includes(r.direction ?? "both")).map((r) => r.crm_field);
    this.previewArea.replaceChildren(
      h("h2", { id: "preview-title" }, "Preview"),
      h("p", { class: "hint" }, "Real records with these mappings applied. Nothing is written until a sync runs."),
      h("h3", {}, `From ${this.provider.name} into your app`),
      previewTable(result.from_crm, pulled, `${this.provider.name} record`,
        `${this.provider.name} has no ${this.entity.entity} records to show yet.`),
      h("h3", {}, `From your app to ${this.provider.name}`),
      previewTable(result.to_crm, pushed, "App record", `Your app has no ${this.entity.entity} records yet.`));
  }

  showRequired(required) {
    if (required.length === 0) {
      this.required.replaceChildren();
      return;
    }
    this.required.replaceChildren(h("div", { class: "notice warn stack", role: "status" },
      h("p", {}, h("b", {}, `${this.provider.name} needs these fields to create a ${this.entity.entity}, and nothing is mapped to them:`)),
      h("ul", { class: "required-list" }, required.map((f) => h("li", { class: "row" },
        h("span", {}, h("b", {}, f.label), " ", h("code", {}, f.name)),
        actionButton("Map it", "admin", () => this.edit(null, f.name), { "aria-label": `Map ${f.label}` }))))));
  }

  /** The add/edit dialog: searchable pickers for both fields, direction, transform. */
  edit(index, crmField = "") {
    const row = index === null ? { app_field: "", crm_field: crmField, direction: "both", transform: null } : this.draft.rows[index];
    const dialog = new MappingDialog(this, row, index);
    dialog.open();
  }
}

/** The dialog that adds or changes one mapping; it checks the result with the API before closing. */
class MappingDialog {
  constructor(page, row, index) {
    Object.assign(this, { page, row, index });
    const transformKind = transformKindOf(row.transform);
    this.errors = Object.fromEntries(["crm", "app", "direction", "transform", "references", "general"].map((k) =>
      [k, h("p", { class: "error", id: `dialog-error-${k}`, role: "alert" })]));
    this.crm = h("input", { id: "pick-crm", list: "crm-fields", value: row.crm_field, autocomplete: "off",
      placeholder: "Search by name or label", "aria-describedby": "pick-crm-hint dialog-error-crm", required: true });
    this.crmHint = h("p", { class: "hint", id: "pick-crm-hint" });
    this.app = h("input", { id: "pick-app", list: "app-fields", value: row.app_field, autocomplete: "off",
      placeholder: "e.g. mobile_phone", "aria-describedby": "pick-app-hint dialog-error-app", required: true });
    this.direction = h("select", { id: "pick-direction", "aria-describedby": "dialog-error-direction" },
      DIRECTIONS.map(([value, label]) => h("option", { value, selected: (row.direction ?? "both") === value }, label)));
    this.transform = h("select", { id: "pick-transform", "aria-describedby": "dialog-error-transform" },
      TRANSFORMS.map(([value, label]) => h("option", { value, selected: transformKind === value }, label)));
    this.valueMap = h("textarea", { id: "value-map", rows: 4, "aria-describedby": "value-map-hint dialog-error-transform",
      placeholder: "gold = Hot\nsilver = Warm" }, valueMapText(row.transform));
    this.dateFormat = h("input", { id: "date-format", value: row.transform?.date_format ?? "", placeholder: "%d/%m/%Y",
      "aria-describedby": "date-format-hint dialog-error-transform" });
    this.valueMapField = h("div", { class: "field" }, h("label", { for: "value-map" }, "Translations, one per line"),
      this.valueMap, h("p", { class: "hint", id: "value-map-hint" }, "app value = CRM value; reversed when pulling."));
    this.dateFormatField = h("div", { class: "field" }, h("label", { for: "date-format" }, "Your app's date format"),
      this.dateFormat, h("p", { class: "hint", id: "date-format-hint" }, "strftime, e.g. %d/%m/%Y; the CRM side is YYYY-MM-DD."));
    this.references = h("select", { id: "pick-references", "aria-describedby": "pick-references-hint dialog-error-references" },
      h("option", { value: "", selected: !row.references }, "Nothing: a plain value"),
      page.provider.entities.map((e) => h("option", { value: e.name, selected: row.references === e.name }, `${e.label} (its id in your app)`)));
    this.referencesField = h("div", { class: "field" }, h("label", { for: "pick-references" }, "Refers to"), this.references,
      h("p", { class: "hint", id: "pick-references-hint" },
        `Your app's field holds the id of one of your records: crmhost sends the ${page.provider.name} record it is linked to (pushing it first if needed) and brings it back as your id.`),
      this.errors.references);
    this.transform.addEventListener("change", () => this.showTransformFields());
    this.crm.addEventListener("input", () => this.describeCrmField());
    this.element = h("dialog", { "aria-labelledby": "mapping-dialog-title", class: "wide" },
      h("form", { method: "dialog", class: "stack", novalidate: true },
        h("h2", { id: "mapping-dialog-title" }, index === null ? "Add a mapping" : `Edit the mapping of ${row.app_field}`),
        h("div", { class: "field" }, h("label", { for: "pick-crm" }, `${page.provider.name} field`), this.crm, this.crmHint, this.errors.crm,
          h("datalist", { id: "crm-fields" }, page.crmFields.fields.map((f) =>
            h("option", { value: f.name, label: `${f.label} · ${f.type}${f.required ? " · required" : ""}${f.writable ? "" : " · read-only"}` })))),
        h("div", { class: "field" }, h("label", { for: "pick-app" }, "App field"), this.app,
          h("p", { class: "hint", id: "pick-app-hint" }, "Your app's field name: lower case, digits and _."), this.errors.app,
          h("datalist", { id: "app-fields" }, [...page.appFields].sort().map((f) => h("option", { value: f })))),
        h("div", { class: "field" }, h("label", { for: "pick-direction" }, "Direction"), this.direction, this.errors.direction),
        h("div", { class: "field" }, h("label", { for: "pick-transform" }, "Transform"), this.transform,
          this.valueMapField, this.dateFormatField, this.errors.transform),
        this.referencesField,
        this.errors.general,
        h("div", { class: "row end" },
          h("button", { type: "button", onclick: () => this.close() }, "Cancel"),
          h("button", { type: "submit", class: "primary" }, index === null ? "Add" : "Apply"))));
    this.element.querySelector("form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.apply();
    });
    this.element.addEventListener("close", () => this.element.remove());
  }

  open() {
    document.body.append(this.element);
    this.showTransformFields();
    this.describeCrmField();
    this.element.showModal();
    (this.row.crm_field ? this.app : this.crm).focus();
  }

  close() {
    this.element.close();
  }

  showTransformFields() {
    this.valueMapField.hidden = this.transform.value !== "value_map";
    this.dateFormatField.hidden = this.transform.value !== "date_format";
  }

  describeCrmField() {
    const info = this.page.fieldInfo(this.crm.value.trim());
    // Only a lookup or association can refer to records; one already set stays visible.
    this.referencesField.hidden = !(["reference", "id"].includes(info?.type) || this.references.value);
    this.crmHint.textContent = info
      ? `${info.label} · ${info.type}${info.required ? " · required to create" : ""}${info.writable ? "" : " · read-only (pull only)"}${info.options.length ? ` · options: ${info.options.slice(0, 8).join(", ")}${info.options.length > 8 ? "…" : ""}` : ""}`
      : "Type to search the CRM's fields by name or label.";
  }

  /** Reads the form; a problem the page can see itself is shown beside its field. */
  read() {
    const crm = this.crm.value.trim();
    const app = this.app.value.trim();
    let ok = true;
    if (!crm) ok = this.fail("crm", "Choose a CRM field.");
    else if (this.page.crmFields.fields.length > 0 && !this.page.fieldInfo(crm)) {
      ok = this.fail("crm", `${this.page.provider.name} has no field “${crm}” on ${this.page.entity.entity}. Pick one from the list.`);
    }
    if (!/^[a-z][a-z0-9_]{0,63}$/.test(app)) ok = this.fail("app", "Use lower case letters, digits and _, starting with a letter.");
    const transform = this.readTransform();
    if (transform === undefined) ok = false;
    const references = this.referencesField.hidden ? null : this.references.value || null;
    if (references && transform) ok = this.fail("references", "A reference carries ids as they are: choose no transform.");
    return ok ? { app_field: app, crm_field: crm, direction: this.direction.value, transform, references, error: "" } : null;
  }

  readTransform() {
    const kind = this.transform.value;
    if (kind === "") return null;
    if (kind === "date_format") {
      if (!this.dateFormat.value.trim()) return this.fail("transform", "Give the date format, e.g. %d/%m/%Y.");
      return { date_format: this.dateFormat.value.trim() };
    }
    if (kind === "value_map") {
      const map = {};
      for (const line of this.valueMap.value.split("\n").map((l) => l.trim()).filter(Boolean)) {
        const at = line.indexOf("=");
        const [from, to] = at < 0 ? [line, ""] : [line.slice(0, at).trim(), line.slice(at + 1).trim()];
        if (!from || !to) return this.fail("transform", `“${line}” is not “app value = CRM value”.`);
        map[from] = to;
      }
      if (Object.keys(map).length === 0) return this.fail("transform", "Add at least one translation.");
      return { value_map: map };
    }
    return kind;
  }

  fail(slot, message) {
    this.errors[slot].textContent = message;
    return undefined;
  }

  /** Checks the changed draft with the API (through a preview), then applies it and closes. */
  async apply() {
    Object.values(this.errors).forEach((e) => { e.textContent = ""; });
    const next = this.read();
    if (!next) return;
    const rows = this.page.draft.rows.filter((_, i) => i !== this.index);
    const clash = rows.find((r) => r.app_field === next.app_field);
    if (clash) return this.fail("app", `${next.app_field} is already mapped (to ${clash.crm_field}). Edit that mapping instead.`);
    const candidate = [...rows];
    candidate.splice(this.index ?? rows.length, 0, next);
    try {
      await api("POST", integration(this.page.slug, "/field-mappings/preview"),
        { entity: this.page.entity.entity, mappings: this.page.payload(candidate), sample: 1 });
    } catch (error) {
      const message = error.message;
      const slot = /references|refer to records|not an entity/.test(message) ? "references"
        : /transform|date_format|value_map/.test(message) ? "transform"
        : message.includes(`\`${next.crm_field}\``) ? "crm"
          : /direction/.test(message) ? "direction"
            : message.includes(next.app_field) ? "app" : "general";
      this.fail(slot, message);
      return;
    }
    this.page.draft.rows = candidate;
    this.page.appFields.add(next.app_field);
    this.close();
    this.page.changed();
    await this.page.preview();
  }
}

function previewTable(rows, columns, idLabel, empty) {
  if (rows.length === 0) return h("p", { class: "muted" }, empty);
  return h("div", { class: "scroll" }, h("table", { class: "preview" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, idLabel), columns.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((row) => h("tr", {},
      h("th", { scope: "row" }, h("code", {}, row.id)),
      columns.map((column) => {
        const flags = row.flags.filter((f) => f.field === column);
        const value = row.values[column];
        return h("td", { class: flags.length ? "flagged" : undefined },
          value === null || value === undefined ? h("span", { class: "muted" }, "—") : String(value),
          flags.map((f) => h("p", { class: "error" }, `⚠ ${f.message}`)));
      }))))));
}

function describeTransform(transform) {
  if (!transform) return h("span", { class: "muted" }, "—");
  if (typeof transform === "string") return TRANSFORMS.find(([t]) => t === transform)?.[1] ?? transform;
  if (transform.value_map) return `Translate ${Object.keys(transform.value_map).length} value(s)`;
  if (transform.date_format) return `Date as ${transform.date_format}`;
  return JSON.stringify(transform);
}

function transformKindOf(transform) {
  if (!transform) return "";
  if (typeof transform === "string") return transform;
  return Object.keys(transform)[0] ?? "";
}

function valueMapText(transform) {
  return transform?.value_map ? Object.entries(transform.value_map).map(([a, c]) => `${a} = ${c}`).join("\n") : "";
}

/** The draft row an API message is about: `mappings[i]`, else a field it names in backticks. */
function rowOfError(message, rows) {
  const indexed = message.match(/mappings\[(\d+)\]/);
  if (indexed && rows[Number(indexed[1])]) return Number(indexed[1]);
  for (const [, name] of message.matchAll(/`([^`]+)`/g)) {
    const at = rows.findIndex((r) => r.crm_field === name || r.app_field === name);
    if (at >= 0) return at;
  }
  return null;
}
