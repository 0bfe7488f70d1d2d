// The top of every per-integration screen: logo, name, status, and tabs between its screens.

import { api, ws } from "../api.js";
import { h, statusBadge } from "../ui.js";

const TABS = [
  ["settings", "Settings"],
  ["mappings", "Field mappings"],
  ["history", "Sync history"],
  ["conflicts", "Conflicts"],
];

/** Loads the provider and the workspace's integration for `slug`; throws a readable error. */
export async function loadIntegration(slug) {
  const [catalogue, mine] = await Promise.all([api("GET", "/api/v1/integrations"), api("GET", ws("/integrations"))]);
  const provider = catalogue.integrations.find((p) => p.slug === slug);
  const item = mine.integrations.find((i) => i.slug === slug && i.status !== "disconnected");
  if (!provider) throw new Error(`No CRM named “${slug}” is installed.`);
  if (!item) throw new Error(`${provider.name} is not connected to this workspace.`);
  return { provider, item };
}

/** The header with tabs; `current` is the tab shown. */
export function integrationHeader(provider, item, current) {
  return h("div", { class: "stack" },
    h("p", {}, h("a", { href: "#/integrations" }, "← Integrations")),
    h("div", { class: "row" },
      h("img", { src: provider.logo_url, alt: "", class: "logo-lg" }),
      h("h1", {}, provider.name), statusBadge(item.status)),
    h("nav", { class: "tabs", "aria-label": `${provider.name} sections` },
      TABS.map(([tab, label]) => h("a", {
        href: `#/integrations/${provider.slug}/${tab}`,
        "aria-current": tab === current ? "page" : undefined,
      }, label))));
}
