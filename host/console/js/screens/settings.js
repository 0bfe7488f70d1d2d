// Screen 6, Settings: schedule (with a time and an IANA time zone), direction, conflict strategy,
// entities, a filter rule builder, advanced options; pause and resume. Errors from the API are
// shown beside the setting they name.

import { api, integration } from "../api.js";
import { can, currentSession } from "../session.js";
import { actionButton, h, show, toast } from "../ui.js";
import { integrationHeader, loadIntegration } from "./integration-header.js";
import { webhookSecretPanel } from "./webhook-secret.js";

const STRATEGIES = [
  ["last_write_wins", "Last change wins", "The side that changed the field last keeps it."],
  ["crm_wins", "The CRM wins", "On a conflict the CRM's value is kept."],
  ["app_wins", "The app wins", "On a conflict the app's value is kept."],
  ["manual_review", "Ask me", "Conflicts wait in the Conflicts tab for a person to decide."],
];

const DIRECTIONS = [
  ["bidirectional", "Both ways"],
  ["push", "From the app to the CRM"],
  ["pull", "From the CRM to the app"],
];

const OPERATORS = [
  ["eq", "is"], ["neq", "is not"], ["contains", "contains"], ["gt", "is greater than"],
  ["lt", "is less than"], ["in", "is one of"], ["exists", "has a value"],
];

/** The settings keys, in the order the form shows them (errors are matched to them). */
const KEYS = ["frequency", "direction", "conflict_strategy", "entities", "filters", "create_missing",
  "propagate_deletes", "daily_limit_percent"];

/** Draws the screen. */
export async function settingsScreen(slug) {
  const { provider, item } = await loadIntegration(slug);
  const current = await api("GET", integration(slug, "/settings"));
  const session = currentSession();
  const admin = can(session, "admin");
  const s = current.settings;
  const errors = Object.fromEntries([...KEYS, "general"].map((k) => [k, h("p", { class: "error", id: `error-${k}`, role: "alert" })]));
  const schedule = scheduleFields(s.frequency, current.schedule);
  const filters = filterBuilder(provider, s.filters ?? {});

  const form = h("form", { class: "stack", "aria-label": "Sync settings" },
    admin ? null : h("p", { class: "notice warn" }, "Only admins and above can change these settings."),
    errors.general,
    h("fieldset", { class: "panel", disabled: !admin, "aria-describedby": "error-frequency" },
      h("legend", {}, "Schedule"), schedule.element, errors.frequency),
    h("fieldset", { class: "panel checks", disabled: !admin, "aria-describedby": "error-direction" },
      h("legend", {}, "Direction"),
      DIRECTIONS.map(([value, label]) => h("label", {},
        h("input", { type: "radio", name: "direction", value, checked: s.direction === value }), label)),
      errors.direction),
    h("fieldset", { class: "panel", disabled: !admin },
      h("legend", {}, "Conflicts"),
      h("label", { for: "strategy" }, "When both sides changed the same field"),
      h("select", { id: "strategy", name: "conflict_strategy", "aria-describedby": "strategy-hint error-conflict_strategy" },
        STRATEGIES.map(([value, label]) => h("option", { value, selected: s.conflict_strategy === value }, label))),
      h("p", { class: "hint", id: "strategy-hint" }, STRATEGIES.find(([v]) => v === s.conflict_strategy)?.[2] ?? ""),
      errors.conflict_strategy),
    h("fieldset", { class: "panel checks", disabled: !admin },
      h("legend", {}, "What to sync"),
      provider.entities.map((e) => h("label", {},
        h("input", { type: "checkbox", name: "entities", value: e.name,
          checked: s.entities.length === 0 || s.entities.includes(e.name) }), e.label)),
      errors.entities),
    h("fieldset", { class: "panel", disabled: !admin },
      h("legend", {}, "Only records that match"),
      h("p", { class: "hint" }, "Every rule must hold. Fields are the app's field names (see Field mappings)."),
      filters.element, errors.filters),
    h("fieldset", { class: "panel checks", disabled: !admin },
      h("legend", {}, "Advanced"),
      h("label", {}, h("input", { type: "checkbox", name: "create_missing", checked: s.create_missing }),
        "Create records that exist on only one side"),
      errors.create_missing,
      h("label", {}, h("input", { type: "checkbox", name: "propagate_deletes", checked: s.propagate_deletes }),
        "Delete on the other side when a record is deleted"),
      errors.propagate_deletes,
      h("div", { class: "field" },
        h("label", { for: "daily-limit" }, "Use at most this share of the CRM's daily API allowance (%)"),
        h("input", { id: "daily-limit", name: "daily_limit_percent", type: "number", min: 1, max: 100,
          value: s.daily_limit_percent ?? "", placeholder: "100" })),
      errors.daily_limit_percent),
    h("div", { class: "row" },
      h("button", { type: "submit", class: "primary", disabled: !admin }, "Save settings"),
      item.status === "paused"
        ? actionButton("Resume syncing", "admin", () => changeSchedule(slug, "resume"))
        : actionButton("Pause syncing", "admin", () => changeSchedule(slug, "pause"))));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    Object.values(errors).forEach((e) => { e.textContent = ""; });
    const data = new FormData(form);
    const patch = {
      frequency: schedule.value(),
      direction: data.get("direction"),
      conflict_strategy: data.get("conflict_strategy"),
      entities: data.getAll("entities"),
      filters: filters.value(),
      create_missing: data.get("create_missing") !== null,
      propagate_deletes: data.get("propagate_deletes") !== null,
    };
    const limit = data.get("daily_limit_percent");
    if (limit) patch.daily_limit_percent = Number(limit);
    try {
      await api("PATCH", integration(slug, "/settings"), patch);
      toast("Settings saved.");
      await settingsScreen(slug);
    } catch (error) {
      const key = KEYS.find((k) => error.message.startsWith(k))
        ?? (error.message.includes("filter") ? "filters" : "general");
      errors[key].textContent = error.message;
      errors[key].closest("fieldset")?.scrollIntoView({ block: "center" });
      toast("The settings were not saved: see the message beside the setting.", "bad");
    }
  });

  show(integrationHeader(provider, item, "settings"), form, webhookSecretPanel(slug, provider));
}

/** The schedule: kind, its number or time, the time zone, and when it next runs. */
function scheduleFields(frequency, schedule) {
  const kind = frequencyKind(frequency);
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : ["UTC"];
  const select = h("select", { id: "schedule-kind" },
    [["manual", "Only when someone presses Sync now"], ["realtime", "In real time"],
      ["every", "Every few minutes"], ["hourly", "Every hour, at a minute"], ["daily", "Every day, at a time"]]
      .map(([value, label]) => h("option", { value, selected: kind === value }, label)));
  const minutes = h("input", { id: "every-minutes", type: "number", min: 1, max: 10080,
    value: frequency?.every_minutes ?? 15 });
  const minute = h("input", { id: "hourly-minute", type: "number", min: 0, max: 59,
    value: frequency?.hourly_at ?? 0 });
  const time = h("input", { id: "daily-time", type: "time", value: frequency?.daily_at ?? "03:00" });
  const zone = h("input", { id: "time-zone", list: "time-zones", value: schedule.time_zone ?? "UTC",
    autocomplete: "off", spellcheck: "false" });
  const parts = {
    every: h("div", { class: "field" }, h("label", { for: "every-minutes" }, "Minutes between syncs"), minutes),
    hourly: h("div", { class: "field" }, h("label", { for: "hourly-minute" }, "Minute past the hour"), minute),
    daily: h("div", { class: "field" }, h("label", { for: "daily-time" }, "Time of day"), time),
    zone: h("div", { class: "field" }, h("label", { for: "time-zone" }, "Time zone"), zone,
      h("datalist", { id: "time-zones" }, zones.map((z) => h("option", { value: z })))),
  };
  const refresh = () => {
    const k = select.value;
    parts.every.hidden = k !== "every";
    parts.hourly.hidden = k !== "hourly";
    parts.daily.hidden = k !== "daily";
    parts.zone.hidden = k !== "hourly" && k !== "daily";
  };
  select.addEventListener("change", refresh);
  refresh();
  const next = schedule.next_sync_at
    ? h("p", { class: "hint", "data-role": "next-sync" },
      `Next sync: ${schedule.next_sync_local?.slice(0, 16).replace("T", " ")} ${schedule.time_zone} `
      + `(${new Date(schedule.next_sync_at).toISOString().slice(0, 16).replace("T", " ")} UTC)`)
    : h("p", { class: "hint", "data-role": "next-sync" }, "No sync is scheduled.");
  const element = h("div", {},
    h("div", { class: "field" }, h("label", { for: "schedule-kind" }, "How often"), select),
    parts.every, parts.hourly, parts.daily, parts.zone, next);
  const value = () => {
    const zoned = (v) => (zone.value && zone.value !== "UTC" ? { ...v, time_zone: zone.value } : v);
    switch (select.value) {
      case "every": return { every_minutes: Number(minutes.value) };
      case "hourly": return zoned({ hourly_at: Number(minute.value) });
      case "daily": return zoned({ daily_at: time.value });
      default: return select.value;
    }
  };
  return { element, value };
}

function frequencyKind(frequency) {
  if (frequency === "manual" || frequency === "realtime") return frequency;
  if (frequency === "hourly" || frequency?.hourly_at !== undefined) return "hourly";
  if (frequency === "daily" || frequency?.daily_at !== undefined) return "daily";
  if (frequency?.every_minutes !== undefined) return "every";
  return "manual";
}

/** Rows of (entity, field, operator, value); `value()` gives the settings' `filters` map. */
function filterBuilder(provider, filters) {
  const rows = h("div", { class: "stack", "data-role": "filter-rows" });
  const addRow = (entity, rule) => rows.append(filterRow(provider, entity, rule));
  for (const [entity, rules] of Object.entries(filters)) rules.forEach((rule) => addRow(entity, rule));
  const add = h("button", { type: "button" }, "Add a rule");
  add.addEventListener("click", () => addRow(provider.entities[0].name, { field: "", op: "eq", value: "" }));
  const value = () => {
    const out = {};
    for (const row of rows.children) {
      const rule = row.readRule();
      if (!rule) continue;
      (out[rule.entity] ??= []).push(rule.filter);
    }
    return out;
  };
  return { element: h("div", { class: "stack" }, rows, add), value };
}

let ruleCount = 0;

function filterRow(provider, entity, rule) {
  const n = ++ruleCount;
  const isMe = typeof rule.value === "object" && rule.value?.connected_user === true;
  const entitySelect = h("select", { "aria-label": `Rule ${n}: record type` },
    provider.entities.map((e) => h("option", { value: e.name, selected: e.name === entity }, e.label)));
  const field = h("input", { "aria-label": `Rule ${n}: field`, value: rule.field ?? "", placeholder: "field, e.g. stage" });
  const op = h("select", { "aria-label": `Rule ${n}: comparison` },
    OPERATORS.map(([value, label]) => h("option", { value, selected: rule.op === value }, label)));
  const shown = Array.isArray(rule.value) ? rule.value.join(", ") : (isMe || rule.value === undefined ? "" : String(rule.value));
  const value = h("input", { "aria-label": `Rule ${n}: value`, value: shown, placeholder: "value (a list: a, b, c)" });
  const me = h("input", { type: "checkbox", checked: isMe });
  const meLabel = h("label", { class: "inline" }, me, "the connected CRM user");
  const remove = h("button", { type: "button", "aria-label": `Remove rule ${n}` }, "Remove");
  const row = h("div", { class: "rule" }, entitySelect, field, op, value, meLabel, remove);
  const refresh = () => {
    value.hidden = op.value === "exists" || me.checked;
    meLabel.hidden = !["eq", "neq"].includes(op.value);
  };
  op.addEventListener("change", refresh);
  me.addEventListener("change", refresh);
  remove.addEventListener("click", () => row.remove());
  refresh();
  row.readRule = () => {
    if (!field.value.trim()) return null;
    const filter = { field: field.value.trim(), op: op.value };
    if (op.value === "exists") filter.value = true;
    else if (me.checked && ["eq", "neq"].includes(op.value)) filter.value = { connected_user: true };
    else if (op.value === "in") filter.value = value.value.split(",").map((v) => v.trim()).filter(Boolean);
    else if (["gt", "lt"].includes(op.value) && value.value.trim() !== "" && !Number.isNaN(Number(value.value))) {
      filter.value = Number(value.value);
    } else filter.value = value.value;
    return { entity: entitySelect.value, filter };
  };
  return row;
}

async function changeSchedule(slug, verb) {
  try {
    await api("POST", integration(slug, `/${verb}`));
    toast(verb === "pause" ? "Syncing paused." : "Syncing resumed.");
    await settingsScreen(slug);
  } catch (error) {
    toast(error.message, "bad");
  }
}
