// Small DOM helpers shared by the screens: element building, times, badges, notices, dialogs,
// and controls a role may not use (visible, focusable, refused with the reason).

import { can, currentSession } from "./session.js";

/** `h("button", {class: "primary", onclick}, "Save")`: an element with attributes and children. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      element.className = value;
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** Replaces the main area's content and moves focus there (for keyboard and screen-reader users). */
export function show(...children) {
  const main = document.getElementById("main");
  main.replaceChildren(...children);
  main.focus({ preventScroll: true });
}

/** "3 minutes ago", "in 2 hours", or "never". */
export function relativeTime(iso) {
  if (!iso) return "never";
  const seconds = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
  const units = [["year", 31536000], ["month", 2592000], ["day", 86400], ["hour", 3600], ["minute", 60]];
  const format = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  for (const [unit, size] of units) {
    if (Math.abs(seconds) >= size) return format.format(Math.round(seconds / size), unit);
  }
  return format.format(seconds, "second");
}

/** An exact local time, for a `title` beside a relative one. */
export function exactTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

/** A `<time>` showing a relative time with the exact one on hover. */
export function timeElement(iso) {
  return h("time", { datetime: iso ?? undefined, title: exactTime(iso) }, relativeTime(iso));
}

const STATUS = {
  connected: ["ok", "Connected"],
  paused: ["warn", "Paused"],
  needs_reauth: ["bad", "Needs re-authorization"],
  error: ["bad", "Error"],
  disconnected: ["", "Disconnected"],
};

/** A status badge: colour and words (never colour alone). */
export function statusBadge(status) {
  const [kind, label] = STATUS[status] ?? ["", status];
  return h("span", { class: `badge ${kind}` }, label);
}

/** A passing notice at the bottom right. `kind`: ok, bad, warn. */
export function toast(message, kind = "ok") {
  const note = h("div", { class: `notice ${kind}` }, message);
  document.getElementById("toasts").append(note);
  setTimeout(() => note.remove(), kind === "bad" ? 9000 : 5000);
}

/** A notice above the page (errors that concern the whole screen); null clears it. */
export function banner(message, kind = "bad") {
  const slot = document.getElementById("banner");
  slot.replaceChildren(...(message ? [h("div", { class: `notice ${kind}` }, message)] : []));
}

let carried = null;

/** A banner for the next screen drawn: redirects clear the banner, so it is carried over them. */
export function bannerOnNextScreen(message, kind = "bad") {
  carried = [message, kind];
}

/** Called as each screen is drawn: shows the carried banner, or clears the last screen's. */
export function showCarriedBanner() {
  banner(...(carried ?? [null]));
  carried = null;
}

/** Asks for confirmation in a modal dialog; resolves true when confirmed. */
export function confirmDialog(title, text, confirmLabel) {
  return new Promise((resolve) => {
    const dialog = h("dialog", { "aria-labelledby": "confirm-title" },
      h("h2", { id: "confirm-title" }, title),
      h("p", {}, text),
      h("form", { method: "dialog", class: "row end" },
        h("button", { value: "cancel" }, "Cancel"),
        h("button", { value: "confirm", class: "danger" }, confirmLabel)));
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "confirm");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/**
 * A button that runs `action` — or, when the session's role is below `role`, stays visible and
 * focusable but refuses with the reason (`aria-disabled`, so keyboards still reach it).
 */
export function actionButton(label, role, action, attributes = {}) {
  const session = currentSession();
  const allowed = session && can(session, role);
  const reason = `Only ${role === "member" ? "members" : `${role}s`} and above can do this.`;
  const button = h("button", {
    type: "button",
    ...attributes,
    "aria-disabled": allowed ? undefined : "true",
    title: allowed ? attributes.title : reason,
  }, label);
  button.addEventListener("click", async () => {
    if (!allowed) {
      toast(reason, "warn");
      return;
    }
    if (button.dataset.busy) return;
    button.dataset.busy = "1";
    try {
      await action(button);
    } finally {
      delete button.dataset.busy;
    }
  });
  return button;
}
