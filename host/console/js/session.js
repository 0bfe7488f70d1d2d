// The person using the console: the workspace token the platform handed over in the URL fragment
// (`/console/#token=<jwt>`; a fragment never reaches a server or a log), kept for this tab only.

const KEY = "crmhost.console.token";

/** Roles in order of power, as the API ranks them. */
const RANK = { viewer: 0, member: 1, admin: 2, owner: 3 };

/** Moves a token from the address bar into this tab's storage, and out of sight. */
export function takeTokenFromUrl() {
  const match = location.hash.match(/^#token=([^&]+)(?:&next=([^&]*))?/);
  if (!match) return;
  sessionStorage.setItem(KEY, decodeURIComponent(match[1]));
  // `next` deep-links a screen (`&next=/integrations/salesforce/mappings`); only console paths.
  const next = decodeURIComponent(match[2] ?? "");
  const screen = /^\/[a-z0-9_/?=&.-]*$/.test(next) && !next.startsWith("//") ? next : "/integrations";
  history.replaceState(null, "", `${location.pathname}${location.search}#${screen}`);
}

/** The signed-in session, or null. The claims are read, not verified: the API verifies them. */
export function currentSession() {
  const token = sessionStorage.getItem(KEY);
  if (!token) return null;
  const claims = decodeClaims(token);
  if (!claims || typeof claims.workspace !== "string") return null;
  return {
    token,
    workspace: claims.workspace,
    role: claims.role in RANK ? claims.role : "viewer",
    user: claims.sub ?? "",
    expiresAt: typeof claims.exp === "number" ? claims.exp * 1000 : Infinity,
  };
}

/** Whether the session has expired. */
export function expired(session) {
  return Date.now() >= session.expiresAt;
}

/** Whether the session's role is at least `role`. */
export function can(session, role) {
  return RANK[session.role] >= RANK[role];
}

/** Forgets the token (the API refused it). */
export function endSession() {
  sessionStorage.removeItem(KEY);
}

function decodeClaims(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(
      [...atob(payload)].map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`).join(""),
    );
    return JSON.parse(json);
  } catch {
    return null;
  }
}
