// Part of Settings: real-time updates from a CRM that cannot sign what it sends (Salesforce's Apex
// triggers, Flows and Outbound Messages). An admin makes the workspace's secret, sees it once with
// the URLs to give the CRM, rotates it (the old one stops at once) or removes it.

import { api, integration } from "../api.js";
import { can, currentSession } from "../session.js";
import { actionButton, confirmDialog, h, timeElement, toast } from "../ui.js";

/** The panel, or null for a CRM that signs its own webhooks (the operator sets those up). */
export function webhookSecretPanel(slug, provider) {
  if (provider.capabilities?.webhooks) return null;
  const body = h("div", { class: "stack" });
  const panel = h("section", { class: "panel stack", "aria-labelledby": "realtime-title" },
    h("h2", { id: "realtime-title" }, `Real-time updates from ${provider.name}`),
    h("p", { class: "hint" }, `With a secret, ${provider.name} can tell crmhost the moment a record changes `
      + "(an Apex trigger, a Flow's HTTP callout, or an Outbound Message), instead of waiting for the next poll. "
      + "Set the schedule to “In real time” to use it."),
    body);
  if (!can(currentSession(), "admin")) {
    body.append(h("p", { class: "notice warn" }, "Only admins and above can set this up."));
    return panel;
  }
  const draw = async (issued) => {
    try {
      const status = await api("GET", integration(slug, "/webhook-secret"));
      body.replaceChildren(h("div", { class: "stack" }, statusView(slug, provider, status, issued, draw)));
    } catch (error) {
      body.replaceChildren(h("p", { class: "notice bad", role: "alert" }, error.message));
    }
  };
  draw(null);
  return panel;
}

function statusView(slug, provider, status, issued, redraw) {
  const url = issued?.url ?? status.url;
  return [
    h("p", {}, status.configured
      ? ["A secret is set: made ", timeElement(status.created_at), status.created_by ? ` by ${status.created_by}.` : "."]
      : "No secret yet: deliveries are refused."),
    copyField("realtime-url", `URL for an Apex trigger or Flow (send the secret in the ${issued?.header ?? "X-Webhook-Secret"} header)`, url),
    issued ? [
      h("div", { class: "notice ok", role: "status" }, "Copy the secret now: it is not shown again."),
      copyField("realtime-secret", "Secret", issued.secret),
      copyField("realtime-outbound", "URL for an Outbound Message (it holds the secret: treat it as one)", issued.outbound_message_url),
    ] : null,
    h("div", { class: "row" },
      actionButton(status.configured ? "Rotate the secret" : "Make a secret", "admin", async () => {
        if (status.configured && !(await confirmDialog("Rotate the secret?",
          `The current secret stops working at once: update it in ${provider.name} right after.`, "Rotate"))) return;
        try {
          const made = await api("POST", integration(slug, "/webhook-secret"));
          toast(status.configured ? "The secret was rotated." : "The secret was made.");
          await redraw(made);
        } catch (error) {
          toast(error.message, "bad");
        }
      }),
      status.configured ? actionButton("Remove the secret", "admin", async () => {
        if (!(await confirmDialog("Remove the secret?",
          `${provider.name} deliveries are refused until a new secret is made.`, "Remove"))) return;
        try {
          await api("DELETE", integration(slug, "/webhook-secret"));
          toast("The secret was removed.");
          await redraw(null);
        } catch (error) {
          toast(error.message, "bad");
        }
      }, { class: "danger" }) : null),
  ];
}

/** A read-only value with its label, selected whole on focus for copying. */
function copyField(id, label, value) {
  return h("div", { class: "field" },
    h("label", { for: id }, label),
    h("input", { id, type: "text", readonly: true, value, spellcheck: "false",
      onfocus: (event) => event.target.select() }));
}
