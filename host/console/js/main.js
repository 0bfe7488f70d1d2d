// The console's entry: takes the token from the address, applies the operator's branding, draws
// the shell and routes `#/…` to the screens. Every screen talks to /api/v1 only.

import { ApiError, SESSION_ENDED } from "./api.js";
import { currentSession, expired, takeTokenFromUrl } from "./session.js";
import { bannerOnNextScreen, h, show, showCarriedBanner } from "./ui.js";
import { integrationsScreen } from "./screens/integrations.js";
import { configureScreen, takeConnectOutcome } from "./screens/connect.js";
import { settingsScreen } from "./screens/settings.js";
import { historyScreen, runScreen } from "./screens/history.js";
import { mappingsScreen } from "./screens/mappings.js";
import { conflictScreen, conflictsScreen } from "./screens/conflicts.js";

/** Routes: a pattern over the hash and the screen it draws. */
const ROUTES = [
  [/^#\/integrations$/, () => integrationsScreen()],
  [/^#\/connect\/([a-z0-9-]+)$/, (slug) => configureScreen(slug)],
  [/^#\/connected\/([a-z0-9-]+)$/, () => integrationsScreen()],
  [/^#\/integrations\/([a-z0-9-]+)\/mappings(?:\/([a-z][a-z0-9_]*))?$/, (slug, entity) => mappingsScreen(slug, entity)],
  [/^#\/integrations\/([a-z0-9-]+)\/settings$/, (slug) => settingsScreen(slug)],
  [/^#\/integrations\/([a-z0-9-]+)\/history(?:\?(.*))?$/, (slug, query) => historyScreen(slug, new URLSearchParams(query ?? ""))],
  [/^#\/integrations\/([a-z0-9-]+)\/history\/([0-9a-f-]{36})$/, (slug, run) => runScreen(slug, run)],
  [/^#\/integrations\/([a-z0-9-]+)\/conflicts(?:\?(.*))?$/, (slug, query) => conflictsScreen(slug, new URLSearchParams(query ?? ""))],
  [/^#\/integrations\/([a-z0-9-]+)\/conflicts\/([0-9a-f-]{36})$/, (slug, id) => conflictScreen(slug, id)],
];


async function boot() {
  takeTokenFromUrl();
  await applyBranding();
  const next = takeConnectOutcome();
  if (next) location.hash = next;
  window.addEventListener(SESSION_ENDED, () => signedOut("Your session has ended."));
  window.addEventListener("hashchange", route);
  await route();
}

async function applyBranding() {
  try {
    const response = await fetch("/console/config.json");
    const config = await response.json();
    const dark = config.theme === "dark" || (config.theme === "auto" && matchMedia("(prefers-color-scheme: dark)").matches);
    document.documentElement.dataset.theme = dark ? "dark" : "light";
    document.title = config.product_name;
    document.getElementById("brand-name").textContent = config.product_name;
    const logo = document.getElementById("brand-logo");
    if (config.logo_url) {
      logo.src = config.logo_url;
      logo.alt = "";
      logo.hidden = false;
    }
  } catch {
    // The defaults in the page stand.
  }
}

function drawShell(session) {
  const nav = document.getElementById("nav");
  const here = location.hash.split("/")[1] ?? "integrations";
  nav.replaceChildren(
    h("a", { href: "#/integrations", "aria-current": here === "integrations" ? "page" : undefined }, "Integrations"));
  document.getElementById("who").textContent = `${session.workspace} · ${session.role}`;
}

/** The address last routed. */
let lastRouted = null;

async function route() {
  // A new sign-in link opened in this tab changes only the fragment: no reload, so take it here.
  if (location.hash.startsWith("#token=")) takeTokenFromUrl();
  const session = currentSession();
  if (!session) return signedOut(null);
  if (expired(session)) return signedOut("Your session has expired.");
  drawShell(session);
  // A dialog belongs to the screen that opened it (Back or a link must not carry it along).
  document.querySelectorAll("dialog[open]").forEach((dialog) => dialog.close());
  // Screen-wide notices belong to the screen they were raised on; a redraw of the same one keeps them.
  if (location.hash !== lastRouted) showCarriedBanner();
  lastRouted = location.hash;
  const hash = location.hash || "#/integrations";
  for (const [pattern, screen] of ROUTES) {
    const match = hash.match(pattern);
    if (match) return run(() => screen(...match.slice(1)));
  }
  // An address that names no screen (an old bookmark, a typo): somewhere that works, saying so.
  bannerOnNextScreen("That address names no screen of the console; here are the integrations.", "warn");
  location.hash = "#/integrations";
}

async function run(screen) {
  try {
    await screen();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;
    show(h("div", { class: "notice bad", role: "alert" }, error.message || "Something went wrong."),
      h("p", {}, h("a", { href: "#/integrations" }, "Back to integrations")));
  }
}

function signedOut(why) {
  document.getElementById("nav").replaceChildren();
  document.getElementById("who").textContent = "";
  show(h("section", { class: "panel narrow stack", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, why ? "Sign in again" : "Sign in from your app"),
    h("p", {}, why ? `${why} Open the integrations page from your app again to continue.`
      : "This console opens from your app, which signs you in. Go back to your app and open its integrations page."),
  ));
}

boot();
