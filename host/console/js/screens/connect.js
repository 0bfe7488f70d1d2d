// Screen 2, Connect: off to the CRM's consent page and back (the API's `return_url`) — or, for a
// CRM that takes an API key or a password, a form the admin fills in — then the first choices —
// direction, frequency, entities — and on to field mappings.

import { api, integration } from "../api.js";
import { bannerOnNextScreen, h, show, toast } from "../ui.js";

/**
 * Connects `provider` (a catalogue entry) the way it offers first, or with what an admin types in
 * when `typed` is set. OAuth: the browser leaves for the CRM and comes back to the console. API
 * key or basic: a dialog asks for what the catalogue's `credential_form` lists, the server tests
 * it against the CRM, and the configure step follows.
 */
export async function startConnect(provider, typed = false) {
  if (provider.credential_form && (typed || provider.auth_type !== "oauth2")) {
    credentialDialog(provider);
    return;
  }
  try {
    const returnUrl = `${location.origin}/console/#/connected/${encodeURIComponent(provider.slug)}`;
    const started = await api("POST", integration(provider.slug, "/connect"), { return_url: returnUrl });
    location.assign(started.authorize_url);
  } catch (error) {
    toast(error.message, "bad");
  }
}

/** Whether a provider offers OAuth and also takes typed-in credentials (a second way to connect). */
export function offersTypedCredentials(provider) {
  return Boolean(provider.credential_form) && provider.auth_type === "oauth2";
}

/** The form for an API key or basic credentials; the secret goes to the server and nowhere else. */
function credentialDialog(provider) {
  const form = provider.credential_form;
  const errors = h("p", { class: "error", role: "alert" });
  const inputs = form.fields.map((field) => h("div", { class: "field" },
    h("label", { for: `credential-${field.name}` }, field.label),
    h("input", {
      id: `credential-${field.name}`, name: field.name, required: true, spellcheck: "false",
      type: field.secret ? "password" : "text", autocomplete: field.secret ? "off" : "username",
    })));
  const submit = h("button", { type: "submit", class: "primary" }, "Connect");
  const cancel = h("button", { type: "button" }, "Cancel");
  const body = h("form", { class: "stack" },
    form.help ? h("p", { class: "muted" }, form.help) : null,
    inputs,
    h("p", { class: "muted" }, `crmhost checks it with ${provider.name}, then keeps it encrypted; it is never shown again.`),
    errors,
    h("div", { class: "row end" }, cancel, submit));
  const dialog = h("dialog", { "aria-labelledby": "credential-title" },
    h("h2", { id: "credential-title" }, `Connect ${provider.name}`), body);
  cancel.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => dialog.remove());
  body.addEventListener("submit", async (event) => {
    event.preventDefault();
    const entered = Object.fromEntries(new FormData(body));
    submit.disabled = true;
    submit.textContent = "Checking…";
    try {
      await api("POST", integration(provider.slug, "/connect"), entered);
      dialog.close();
      location.hash = `#/connect/${encodeURIComponent(provider.slug)}`;
    } catch (error) {
      errors.textContent = error.message;
      submit.disabled = false;
      submit.textContent = "Connect";
    }
  });
  document.body.append(dialog);
  dialog.showModal();
}

/**
 * Reads what the OAuth callback appended to the address (`crmhost_result`, `integration`,
 * `error_description`), removes it, and says where to go: the configure step, or back to the
 * integrations with the reason in a banner.
 */
export function takeConnectOutcome() {
  const params = new URLSearchParams(location.search);
  const result = params.get("crmhost_result");
  if (!result) return null;
  const slug = params.get("integration") ?? "";
  history.replaceState(null, "", `${location.pathname}${location.hash}`);
  if (result === "connected") return `#/connect/${encodeURIComponent(slug)}`;
  const why = params.get("error_description") ?? params.get("error") ?? "the CRM did not say why";
  bannerOnNextScreen(`Connecting ${slug || "the CRM"} failed: ${why}`);
  return "#/integrations";
}

const FREQUENCIES = [
  ["manual", "Only when I press Sync now", "manual"],
  ["realtime", "In real time", "realtime"],
  ["15", "Every 15 minutes", { every_minutes: 15 }],
  ["hourly", "Every hour", "hourly"],
  ["daily", "Once a day", "daily"],
];

const DIRECTIONS = [
  ["bidirectional", "Both ways", "Changes on either side reach the other."],
  ["push", "From the app to the CRM", "The CRM receives; its changes stay there."],
  ["pull", "From the CRM to the app", "The app receives; its changes stay here."],
];

/** The configure step after a successful connection. */
export async function configureScreen(slug) {
  const [catalogue, current] = await Promise.all([
    api("GET", "/api/v1/integrations"),
    api("GET", integration(slug, "/settings")),
  ]);
  const provider = catalogue.integrations.find((p) => p.slug === slug);
  if (!provider) throw new Error(`No CRM named “${slug}” is installed.`);
  const settings = current.settings;
  const chosen = new Set(settings.entities.length ? settings.entities : provider.entities.map((e) => e.name));
  const errors = h("div", { class: "error", role: "alert" });

  const form = h("form", { class: "panel narrow", "aria-labelledby": "configure-title" },
    h("fieldset", { class: "field checks" }, h("legend", {}, "Direction"),
      DIRECTIONS.map(([value, label, hint]) => h("label", {},
        h("input", { type: "radio", name: "direction", value, checked: settings.direction === value }),
        h("span", {}, h("b", {}, label), " — ", h("span", { class: "muted" }, hint))))),
    h("div", { class: "field" },
      h("label", { for: "frequency" }, "How often"),
      h("select", { id: "frequency", name: "frequency" },
        FREQUENCIES.map(([key, label, value]) => h("option", { value: key, selected: sameFrequency(settings.frequency, value) }, label)))),
    h("fieldset", { class: "field checks" }, h("legend", {}, "What to sync"),
      provider.entities.map((e) => h("label", {},
        h("input", { type: "checkbox", name: "entities", value: e.name, checked: chosen.has(e.name) }), e.label))),
    errors,
    h("div", { class: "row" },
      h("button", { type: "submit", class: "primary" }, "Save and continue"),
      h("a", { class: "button", href: "#/integrations" }, "Later")));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const entities = data.getAll("entities");
    if (entities.length === 0) {
      errors.textContent = "Choose at least one kind of record to sync.";
      return;
    }
    const frequency = FREQUENCIES.find(([key]) => key === data.get("frequency"))?.[2] ?? "manual";
    try {
      await api("PATCH", integration(slug, "/settings"), { direction: data.get("direction"), frequency, entities });
      connectedScreen(provider);
    } catch (error) {
      errors.textContent = error.message;
    }
  });

  show(h("h1", { id: "configure-title" }, `Connected to ${provider.name}`),
    h("p", { class: "muted" }, "Choose how records sync. You can change this any time in the integration's settings."),
    form);
}

function connectedScreen(provider) {
  show(h("section", { class: "panel narrow stack", "aria-labelledby": "done-title" },
    h("h1", { id: "done-title" }, `${provider.name} is ready`),
    h("p", {}, "Next, check which fields go where. crmhost starts from sensible defaults and can suggest the rest."),
    h("div", { class: "row" },
      h("a", { class: "button primary", href: `#/integrations/${provider.slug}/mappings` }, "Configure field mappings"),
      h("a", { class: "button", href: "#/integrations" }, "Back to integrations"))));
}

function sameFrequency(stored, option) {
  return JSON.stringify(stored) === JSON.stringify(option);
}
