// Screen 1, Integrations: a card per connected CRM (logo, status in words and colour, who it is
// connected as, last and next sync, quick stats, actions) and the CRMs that can still be connected.

import { api, integration, ws } from "../api.js";
import { actionButton, banner, confirmDialog, h, show, statusBadge, timeElement, toast } from "../ui.js";
import { offersTypedCredentials, startConnect } from "./connect.js";

/** Draws the screen. */
export async function integrationsScreen() {
  const [catalogue, mine] = await Promise.all([api("GET", "/api/v1/integrations"), api("GET", ws("/integrations"))]);
  const providers = new Map(catalogue.integrations.map((p) => [p.slug, p]));
  const connected = mine.integrations.filter((i) => i.status !== "disconnected" && providers.has(i.slug));
  const available = catalogue.integrations.filter((p) => !connected.some((i) => i.slug === p.slug));

  const heading = h("div", { class: "row spread" },
    h("div", {}, h("h1", {}, "Integrations"),
      h("p", { class: "muted" }, "Keep your records in step with the CRMs your team uses.")));
  if (connected.length === 0) {
    show(heading, emptyState(available));
    return;
  }
  show(heading,
    h("section", { "aria-label": "Connected CRMs", class: "cards" },
      connected.map((i) => integrationCard(i, providers.get(i.slug)))),
    available.length ? h("h2", {}, "Add a CRM") : null,
    available.length ? h("section", { "aria-label": "CRMs you can connect", class: "cards" },
      available.map(providerCard)) : null);
}

function emptyState(available) {
  return h("section", { class: "panel narrow stack", "aria-labelledby": "empty-title" },
    h("h2", { id: "empty-title" }, "No CRM connected yet"),
    h("p", {}, "Connect your CRM to sync contacts, companies and deals both ways. You sign in at the CRM, or give it an API key; crmhost keeps credentials encrypted and never shows them again."),
    h("div", { class: "row" }, available.map((p) => {
      const button = actionButton(`Connect ${p.name}`, "admin", () => startConnect(p), { class: "primary" });
      button.prepend(h("img", { src: p.logo_url, alt: "" }));
      // A CRM offering sign-in and a typed key gets both ways here too, as on its card, kept together.
      return offersTypedCredentials(p)
        ? h("span", { class: "row" }, button,
          actionButton(`Connect ${p.name} with ${typedCredentials(p)}`, "admin", () => startConnect(p, true)))
        : button;
    })));
}

/** What an admin types to connect without signing in at the CRM: "API token", "User name and Password". */
function typedCredentials(provider) {
  return provider.credential_form.fields.map((f) => f.label).join(" and ");
}

function providerCard(provider) {
  return h("article", { class: "card", "aria-labelledby": `provider-${provider.slug}` },
    h("header", {}, h("img", { src: provider.logo_url, alt: "" }),
      h("div", {}, h("h2", { id: `provider-${provider.slug}` }, provider.name),
        h("span", { class: "muted" }, provider.entities.map((e) => e.label).join(", ")))),
    h("p", { class: "muted" }, provider.description),
    h("div", { class: "actions" },
      actionButton(`Connect ${provider.name}`, "admin", () => startConnect(provider), { class: "primary" }),
      offersTypedCredentials(provider)
        ? actionButton(`Use ${typedCredentials(provider)} instead`, "admin", () => startConnect(provider, true))
        : null));
}

function integrationCard(item, provider) {
  const titleId = `integration-${item.slug}`;
  const health = item.health ?? {};
  const paused = item.status === "paused";
  return h("article", { class: "card", "aria-labelledby": titleId, "data-slug": item.slug },
    h("header", {}, h("img", { src: provider.logo_url, alt: "" }),
      h("div", {}, h("h2", { id: titleId }, provider.name), statusBadge(item.status))),
    item.status_reason ? h("p", { class: "muted", "data-role": "reason" }, item.status_reason) : null,
    h("dl", { class: "facts" },
      h("dt", {}, "Connected as"), h("dd", {}, item.account?.label ?? "—"),
      h("dt", {}, "Last sync"), h("dd", {}, timeElement(item.last_sync_at)),
      h("dt", {}, "Next sync"), h("dd", {}, item.next_sync_at ? timeElement(item.next_sync_at) : "not scheduled")),
    h("div", { class: "stats" },
      stat(health.failing_records ?? 0, "failing records"),
      stat(health.pending_conflicts ?? 0, "conflicts to review"),
      stat(lastRun(health.last_run_status), "last run")),
    h("div", { class: "actions" },
      h("a", { class: "button", href: `#/integrations/${item.slug}/settings` }, "Configure"),
      actionButton("Sync now", "member", (button) => syncNow(item.slug, provider.name, button), { disabled: paused || undefined }),
      paused
        ? actionButton("Resume", "admin", () => changeSchedule(item.slug, "resume", `${provider.name} resumed.`))
        : actionButton("Pause", "admin", () => changeSchedule(item.slug, "pause", `${provider.name} paused.`)),
      actionButton("Disconnect", "admin", () => disconnect(item.slug, provider.name), { class: "danger" })));
}

function stat(value, label) {
  return h("div", {}, h("b", {}, String(value)), h("span", { class: "muted" }, label));
}

function lastRun(status) {
  if (!status) return "None yet";
  const words = status.replace(/_/g, " ");
  return words[0].toUpperCase() + words.slice(1);
}

/** Starts a run and offers to watch it live beside the button. */
async function syncNow(slug, name, button) {
  try {
    const started = await api("POST", integration(slug, "/sync"), {});
    toast(`${name}: sync started.`);
    button.parentElement.querySelector(".watch")?.remove();
    button.after(h("a", { class: "button watch", href: `#/integrations/${slug}/history/${started.run_id}` }, "Watch it live"));
  } catch (error) {
    toast(`${name}: ${error.message}`, "bad");
  }
}

async function changeSchedule(slug, verb, done) {
  try {
    await api("POST", integration(slug, `/${verb}`));
    toast(done);
    await integrationsScreen();
  } catch (error) {
    toast(error.message, "bad");
  }
}

async function disconnect(slug, name) {
  const sure = await confirmDialog(`Disconnect ${name}?`,
    `crmhost revokes its access to ${name} and stops syncing. Your records stay where they are; you can connect again later.`,
    "Disconnect");
  if (!sure) return;
  try {
    await api("DELETE", integration(slug));
    toast(`${name} disconnected.`);
    banner(null);
    await integrationsScreen();
  } catch (error) {
    toast(error.message, "bad");
  }
}
