// The console: a page of the service itself that talks only to its JSON API, with a token kept in this tab's
// sessionStorage and sent as `Authorization: Bearer`. Everything a partner or a person typed is shown with
// textContent (never as HTML), and nothing here puts the token in a URL.
"use strict";

const TOKEN_KEY = "lucca-connectors.token";
const KINDS = ["softgarden", "taleez", "cards", "elevo"];
const KIND_NAMES = { softgarden: "Softgarden", taleez: "Taleez", cards: "Cards", elevo: "Elevo", lucca: "Lucca" };
// What a run did and what started it, in words (contract section 6); an operation not listed is shown humanized.
const OPERATION_NAMES = {
  candidate_hired: "Candidate hired",
  candidate_import: "Candidate import",
  users_import: "Users import",
  departments_import: "Departments import",
  stats_sync: "Statistics push",
  people_sync: "People file",
  directory_sync: "Directory full sync",
  changes: "Changes followed",
};
const TRIGGER_NAMES = { webhook: "Webhook", api: "On demand", schedule: "Nightly schedule", retry: "Retry", change: "Lucca change" };
const WEBHOOK_KINDS = ["softgarden", "cards"];
const STATUSES = ["queued", "running", "succeeded", "partial", "failed"];
const UNFINISHED = ["queued", "running"];
const RETRYABLE = ["failed", "partial"];
// `added` and `gone` are counted by the directory's full sync only.
const OUTCOMES = ["added", "created", "linked", "updated", "skipped", "suspended", "gone", "failed"];
const CARDS_STATUSES = {
  imported: "Imported",
  not_imported: "Not imported",
  missing_email: "No professional email",
  duplicate_email: "Email shared with another employee",
};
const LOGIN_MODES = ["app", "sso", "GoogleOAuth", "MicrosoftOAuth", "AppleOAuth"];
const MINTED_BY = { operator: "The operator", tenant_key: "The tenant key" };
// Settings whose value is a secret: never shown, sent only when typed (left empty, the stored one stays).
const SECRET_FIELDS = new Set(["api_secret", "api_token", "password", "private_key", "passphrase"]);
const MULTILINE_FIELDS = new Set(["private_key", "host_key"]);
// Plain words for settings whose generated label, help or choices would not say enough, by their path under
// `settings` (a 422 still names the API's field, and is shown next to it).
const SETTING_WORDS = {
  auto_sync: {
    label: "Auto sync: Cards follows Lucca's directory on its own",
    help: "Within a minute of a change in Lucca, without an import; switching it on brings the Cards space in line "
      + "once. Its runs are listed as “Changes followed”, started by “Lucca change”.",
  },
  "auto_sync.users": { label: "Users: every current employee is a Cards user" },
  "auto_sync.departments": {
    label: "Departments kept as Cards groups",
    help: "A move leaves the old department's group and joins the new one's. Groups the service did not make from a "
      + "department are never touched.",
    options: { none: "None", imported: "Those already imported as groups", all: "Every active department" },
  },
  "auto_sync.leavers": {
    label: "Leavers (contract ended, or gone from Lucca)",
    options: { keep: "Keep their Cards user as it is", remove_from_groups: "Take them out of the groups the service manages",
      delete: "Delete their Cards user" },
  },
  push_on_change: {
    label: "Push on change: send a new file when Lucca changes",
    help: "A new file, built from the directory's copy, when a change in Lucca changes a row of the file or who is in "
      + "it; none when the file would be the same as the last one. The nightly file stays. Its runs are listed as "
      + "“People file”, started by “Lucca change”.",
  },
  min_interval_minutes: { label: "Minutes at least between two files" },
};
const REFRESH_MS = 2000;
// A run's events are read this many at a time (the API gives at most 1000).
const EVENTS_PAGE = 500;

const state = { me: null, tenants: {}, openapi: null };
let generation = 0; // each view's number: a view that is no longer shown stops writing and refreshing
let timer = null;

// ---------------------------------------------------------------------------------------------------------------
// Building the page: elements with text children only.

function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else if (["checked", "disabled", "selected", "value", "required", "multiple"].includes(name)) element[name] = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

function append(element, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

function fill(element, ...children) {
  element.replaceChildren();
  return append(element, children);
}

let uid = 0;
function newId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

function link(href, ...children) {
  return h("a", { href }, ...children);
}

function table(headers, rows, caption) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, headers.map((header) => h("th", { scope: "col" }, header)))),
      h("tbody", {}, rows),
    ),
  );
}

function empty(text) {
  return h("p", { class: "empty" }, text);
}

function badge(status) {
  return h("span", { class: `badge badge-${status}` }, status);
}

function button(text, onclick, attrs) {
  return h("button", { type: "button", onclick, ...(attrs || {}) }, text);
}

function notice(text, kind) {
  const region = document.getElementById("notice");
  fill(region, text ? h("p", { class: `notice ${kind || "info"}` }, text) : null);
}

function errorText(error) {
  if (error instanceof ApiError) return error.message;
  return "Something went wrong on this page; reload it and try again.";
}

// A value shown once (a key, a token, a link) with a button that copies it.
function shownOnce(label, value, note) {
  const id = newId("once");
  const input = h("input", { id, type: "text", readonly: true, value, class: "once", spellcheck: "false" });
  const copy = button("Copy", async () => {
    input.select();
    try {
      await navigator.clipboard.writeText(value);
      notice(`${label} copied.`, "ok");
    } catch {
      notice("Select the text and copy it (the browser did not allow copying).", "info");
    }
  });
  return h("div", { class: "shown-once", role: "group", "aria-label": label },
    h("label", { for: id }, label), h("div", { class: "copy-row" }, input, copy), note ? h("p", { class: "hint" }, note) : null);
}

// ---------------------------------------------------------------------------------------------------------------
// The token: read once from the link's fragment, then only from this tab's sessionStorage.

function takeTokenFromFragment() {
  const match = /^#token=([^&]+)/.exec(window.location.hash);
  if (!match) return;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
  // A link opened in a tab already signed in replaces who is signed in.
  state.me = null;
  state.tenants = {};
  // Out of the address bar and the history at once: the fragment is the only place the link held it.
  history.replaceState(null, "", window.location.pathname + window.location.search + "#/");
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.me = null;
  state.tenants = {};
  if (window.location.hash !== "#/") history.replaceState(null, "", window.location.pathname + "#/");
  render(message);
}

// ---------------------------------------------------------------------------------------------------------------
// The JSON API.

class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : describeDetail(status, detail));
    this.status = status;
    this.detail = detail;
  }

  fieldErrors() {
    return Array.isArray(this.detail) ? this.detail : [];
  }
}

function describeDetail(status, detail) {
  if (Array.isArray(detail) && detail.length) {
    return detail.map((error) => `${(error.loc || []).filter((part) => part !== "body").join(".")}: ${error.msg}`).join("; ");
  }
  return `The service answered ${status}.`;
}

async function api(method, path, body) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
  } catch {
    throw new ApiError(0, "The service did not answer: check your connection and try again.");
  }
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (response.status === 401) {
    const detail = data && typeof data.detail === "string" ? data.detail : "";
    signOut(detail.includes("expired") ? detail : "This key or link is not valid (or no longer): sign in again.");
    throw new ApiError(401, detail || "Not signed in.");
  }
  if (!response.ok) throw new ApiError(response.status, data ? data.detail : null);
  return data;
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== "" && value !== null && value !== undefined) search.set(name, value);
  const text = search.toString();
  return text ? `?${text}` : "";
}

async function tenantOf(slug) {
  if (!state.tenants[slug]) state.tenants[slug] = await api("GET", `/api/v1/tenants/${encodeURIComponent(slug)}`);
  return state.tenants[slug];
}

// A tenant's connector of this kind, or null when it is not set up.
async function connectorOf(slug, kind) {
  return api("GET", `/api/v1/tenants/${slug}/connectors/${kind}`).catch((error) => {
    if (error.status === 404) return null;
    throw error;
  });
}

async function openapi() {
  if (!state.openapi) {
    const response = await fetch("/openapi.json", { cache: "no-store", credentials: "omit" });
    state.openapi = await response.json();
  }
  return state.openapi;
}

// ---------------------------------------------------------------------------------------------------------------
// Dates, in the tenant's time zone.

function formatDate(value, timeZone) {
  if (!value) return "—";
  return new Intl.DateTimeFormat(undefined, { timeZone, dateStyle: "medium", timeStyle: "medium" }).format(new Date(value));
}

function zoneParts(ms, timeZone) {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(new Date(ms));
  const part = Object.fromEntries(parts.map((item) => [item.type, item.value]));
  return part;
}

function zoneOffset(ms, timeZone) {
  const p = zoneParts(ms, timeZone);
  return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - Math.floor(ms / 1000) * 1000;
}

// "2026-12-01T08:00" read in `timeZone` → an ISO 8601 moment in UTC.
function zonedToIso(local, timeZone) {
  const [day, time] = local.split("T");
  const [year, month, date] = day.split("-").map(Number);
  const [hour, minute] = (time || "00:00").split(":").map(Number);
  const wall = Date.UTC(year, month - 1, date, hour, minute);
  let moment = wall - zoneOffset(wall, timeZone);
  moment = wall - zoneOffset(moment, timeZone);
  return new Date(moment).toISOString();
}

function isoToZoned(ms, timeZone) {
  const p = zoneParts(ms, timeZone);
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Routing: `#/…` in the fragment, so no route ever reaches a server.

const ROUTES = [
  [/^\/$/, homeView],
  [/^\/tenants\/([a-z0-9-]+)$/, tenantView],
  [/^\/tenants\/([a-z0-9-]+)\/connectors\/([a-z]+)$/, connectorView],
  [/^\/tenants\/([a-z0-9-]+)\/runs$/, runsView],
  [/^\/tenants\/([a-z0-9-]+)\/runs\/([0-9a-f-]+)$/, runView],
  [/^\/tenants\/([a-z0-9-]+)\/cards$/, cardsView],
  [/^\/tenants\/([a-z0-9-]+)\/elevo$/, elevoView],
  [/^\/tenants\/([a-z0-9-]+)\/alerts$/, alertsView],
];

function currentRoute() {
  const hash = window.location.hash.replace(/^#/, "") || "/";
  const [path, search] = hash.split("?");
  return { path, params: new URLSearchParams(search || "") };
}

function go(hash) {
  if (window.location.hash === hash) render();
  else window.location.hash = hash;
}

function tenantPath(slug, rest) {
  return `#/tenants/${slug}${rest || ""}`;
}

async function render(message) {
  generation += 1;
  const mine = generation;
  clearTimeout(timer);
  const main = document.getElementById("main");
  notice(message || "", message ? "error" : "info");
  if (!token()) {
    fillHeader();
    fill(main, signInView());
    focusHeading(main);
    return;
  }
  try {
    if (!state.me) state.me = await api("GET", "/api/v1/me");
  } catch (error) {
    if (error.status !== 401) fill(main, h("p", { role: "alert", class: "error" }, errorText(error)));
    return;
  }
  const { path, params } = currentRoute();
  const found = ROUTES.map(([pattern, view]) => [pattern.exec(path), view]).find(([match]) => match);
  fillHeader(found ? found[0][1] : null);
  const view = h("div", { class: "view" });
  fill(main, view);
  if (!found) {
    append(view, h("h1", { tabindex: "-1" }, "Page not found"), h("p", {}, link("#/", "Back to the start")));
    focusHeading(main);
    return;
  }
  const [match, show] = found;
  const context = { view, mine, params, live: () => mine === generation };
  try {
    await show(context, ...match.slice(1));
  } catch (error) {
    // A fault of the page itself goes to the browser's console too, for whoever looks into it.
    if (!(error instanceof ApiError)) console.error(error);
    if (!context.live() || error.status === 401) return;
    fill(view, h("h1", { tabindex: "-1" }, error.status === 404 ? "Not found" : "This page could not be shown"),
      h("p", { role: "alert", class: "error" }, error.status === 404 ? `${error.message} Check the address, or go back to the start.` : errorText(error)),
      h("p", {}, link("#/", "Back to the start")));
  }
  if (context.live()) focusHeading(main);
}

function focusHeading(main) {
  const heading = main.querySelector("h1");
  if (heading && !main.contains(document.activeElement)) heading.focus({ preventScroll: true });
}

function refreshLater(context, load) {
  clearTimeout(timer);
  timer = setTimeout(() => {
    if (context.live()) load();
  }, REFRESH_MS);
}

// ---------------------------------------------------------------------------------------------------------------
// Header: who is signed in, where to go, sign out.

function fillHeader(slug) {
  const who = document.getElementById("who");
  const nav = document.getElementById("nav");
  fill(nav);
  if (!state.me) {
    fill(who);
    return;
  }
  const me = state.me;
  const tenant = me.tenant;
  const expiry = me.expires_at ? ` · this link works until ${formatDate(me.expires_at, tenant.timezone)}` : "";
  fill(who, h("span", {}, me.role === "operator" ? "Operator" : `${tenant.name} (${tenant.slug})${expiry}`),
    button("Sign out", () => signOut("You are signed out."), { class: "secondary" }));
  const home = tenant ? tenant.slug : slug;
  const items = [];
  if (me.role === "operator") items.push(["#/", "Tenants"]);
  if (home) {
    items.push([tenantPath(home), "Connectors"], [tenantPath(home, "/runs"), "Runs"], [tenantPath(home, "/cards"), "Cards"],
      [tenantPath(home, "/elevo"), "Elevo"], [tenantPath(home, "/alerts"), "Alerts"]);
  }
  const current = window.location.hash.split("?")[0];
  fill(nav, h("ul", {}, items.map(([href, text]) => h("li", {}, h("a", { href, "aria-current": href === current ? "page" : null }, text)))));
}

// ---------------------------------------------------------------------------------------------------------------
// Signing in.

function signInView() {
  const id = newId("token");
  const error = h("p", { class: "error", role: "alert" });
  const input = h("input", { id, name: "token", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const form = h("form", {
    class: "card narrow",
    onsubmit: async (event) => {
      event.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      input.value = "";
      state.me = null;
      // The page asked for (an alert's link to a run, say) is shown once signed in.
      if (!window.location.hash.startsWith("#/")) history.replaceState(null, "", window.location.pathname + "#/");
      await render();
    },
  },
  h("h1", { tabindex: "-1" }, "Sign in to the console"),
  h("p", {}, "Type the operator token or your tenant key once: it stays in this tab only, until you sign out or close it. "
    + "Got a console link? Open it: it signs you in for a limited time."),
  h("label", { for: id }, "Operator token or tenant key"), input, error,
  h("button", { type: "submit" }, "Sign in"));
  return form;
}

// ---------------------------------------------------------------------------------------------------------------
// Home: the operator's tenants, or straight to the tenant a key acts for.

async function homeView(context) {
  if (state.me.role !== "operator") {
    history.replaceState(null, "", tenantPath(state.me.tenant.slug));
    return tenantView(context, state.me.tenant.slug);
  }
  const list = h("div", {});
  const created = h("div", { "aria-live": "polite" });
  const rows = [];
  const more = h("div", {});
  async function load(after) {
    const page = await api("GET", `/api/v1/tenants${query({ limit: 50, after })}`);
    if (!context.live()) return;
    if (!after) rows.length = 0;
    for (const tenant of page.items) {
      state.tenants[tenant.slug] = tenant;
      rows.push(h("tr", {},
        h("td", {}, link(tenantPath(tenant.slug), tenant.slug)), h("td", {}, tenant.name), h("td", {}, tenant.timezone),
        h("td", {}, formatDate(tenant.created_at, tenant.timezone)),
        h("td", {}, consoleLinkButton(tenant.slug, created))));
    }
    fill(list, rows.length ? table(["Slug", "Name", "Time zone", "Created", "Console link"], rows) : empty("No tenant yet: create the first one below."));
    fill(more, page.next ? button("More tenants", () => load(page.next)) : null);
    list.append(more);
  }
  append(context.view, h("h1", { tabindex: "-1" }, "Tenants"), list, created, createTenantForm(created, () => load(null)));
  await load(null);
}

function consoleLinkButton(slug, target, onMade) {
  return button("Make a console link", async () => {
    try {
      const made = await api("POST", `/api/v1/tenants/${slug}/console-links`, { ttl_seconds: 3600 });
      const zone = (state.tenants[slug] || {}).timezone;
      fill(target, h("div", { class: "card" }, h("h2", {}, `Console link for ${slug}`),
        shownOnce("Console link", made.url, `Send it to the tenant's admin: it signs them in to ${slug} only, until ${formatDate(made.expires_at, zone)}. It is shown this once.`)));
      target.querySelector("input").focus();
      if (onMade) await onMade();
    } catch (error) {
      notice(errorText(error), "error");
    }
  }, { "aria-label": `Make a console link for ${slug}` });
}

function createTenantForm(target, onCreated) {
  const fields = [
    ["slug", "Slug (a-z, 0-9, -)", "text", { required: true, pattern: "[a-z0-9-]{2,40}" }],
    ["name", "Name", "text", { required: true }],
    ["timezone", "Time zone", "text", { value: "Europe/Paris" }],
    ["lucca.base_url", "Lucca URL", "url", { required: true, placeholder: "https://acme.ilucca.net" }],
    ["lucca.api_key", "Lucca API key", "password", { autocomplete: "off" }],
    ["lucca.oauth.client_id", "Lucca OAuth client id (with or instead of the key)", "text", { autocomplete: "off" }],
    ["lucca.oauth.client_secret", "OAuth client secret", "password", { autocomplete: "off" }],
    ["lucca.oauth.token_url", "OAuth token URL (Lucca's when empty)", "url", {}],
    ["lucca.rate_limit.requests", "Lucca calls allowed…", "number", { value: "50", min: "1" }],
    ["lucca.rate_limit.per_seconds", "…per seconds", "number", { value: "60", min: "1" }],
    ["lucca.poll_seconds", "Directory poll interval (seconds)", "number", { value: "60", min: "30", max: "3600" }],
  ];
  const form = h("form", { class: "card", novalidate: true });
  const controls = {};
  append(form, h("h2", {}, "Create a tenant"));
  for (const [path, label, type, attrs] of fields) {
    const field = labelled(label, h("input", { type, name: path, ...attrs }));
    controls[path] = field;
    form.append(field.wrapper);
  }
  const formError = h("p", { class: "error", role: "alert" });
  form.append(formError, h("button", { type: "submit" }, "Create the tenant"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form, formError);
    const body = {};
    for (const [path, , type] of fields) {
      const raw = controls[path].control.value.trim();
      if (raw === "") continue;
      setPath(body, path.split("."), type === "number" ? Number(raw) : raw);
    }
    try {
      const tenant = await api("POST", "/api/v1/tenants", body);
      state.tenants[tenant.slug] = tenant;
      form.reset();
      fill(target, h("div", { class: "card" }, h("h2", {}, `Tenant ${tenant.slug} created`),
        shownOnce("Tenant key", tenant.api_key, "The tenant key is shown this once: keep it somewhere safe. It acts on this tenant only."),
        h("p", {}, link(tenantPath(tenant.slug), `Set up ${tenant.name}'s connectors`))));
      target.querySelector("input").focus();
      await onCreated();
    } catch (error) {
      showErrors(error, formError, (loc) => controls[loc.slice(1).join(".")]);
    }
  });
  return form;
}

function setPath(target, path, value) {
  let node = target;
  for (const key of path.slice(0, -1)) node = node[key] = node[key] || {};
  node[path[path.length - 1]] = value;
}

// One control with its label, help text and error line, tied together for assistive technology.
function labelled(label, control, help) {
  const id = control.id || newId("field");
  control.id = id;
  const error = h("p", { class: "field-error", id: `${id}-error`, "aria-live": "polite" });
  const hint = help ? h("p", { class: "hint", id: `${id}-help` }, help) : null;
  control.setAttribute("aria-describedby", [hint ? `${id}-help` : null, `${id}-error`].filter(Boolean).join(" "));
  const isCheck = control.type === "checkbox";
  const labelElement = h("label", { for: id }, label);
  const wrapper = h("div", { class: isCheck ? "field check" : "field" }, isCheck ? [control, labelElement] : [labelElement, control], hint, error);
  return { wrapper, control, error };
}

function clearErrors(form, formError) {
  fill(formError);
  for (const element of form.querySelectorAll(".field-error")) fill(element);
  for (const element of form.querySelectorAll("[aria-invalid]")) element.removeAttribute("aria-invalid");
}

// A 422 is shown next to the field it names; anything else above the button.
function showErrors(error, formError, fieldFor) {
  const errors = error instanceof ApiError ? error.fieldErrors() : [];
  const unplaced = [];
  for (const item of errors) {
    const loc = item.loc || [];
    let field = null;
    for (let length = loc.length; length > 1 && !field; length -= 1) field = fieldFor(loc.slice(0, length));
    if (field) {
      append(field.error, field.error.textContent ? " " : "", item.msg);
      field.control.setAttribute("aria-invalid", "true");
    } else {
      unplaced.push(`${loc.filter((part) => part !== "body").join(".")}: ${item.msg}`);
    }
  }
  if (!errors.length) fill(formError, errorText(error));
  else if (unplaced.length) fill(formError, unplaced.join(" "));
  else fill(formError, "Some fields need a change: see the messages next to them.");
  const first = document.querySelector("[aria-invalid='true']");
  if (first) first.focus();
}

// ---------------------------------------------------------------------------------------------------------------
// A tenant: its connectors at a glance.

async function tenantView(context, slug) {
  const tenant = await tenantOf(slug);
  const zone = tenant.timezone;
  const glance = h("div", {}, h("p", { class: "loading" }, "Loading the connectors…"));
  append(context.view, h("h1", { tabindex: "-1" }, tenant.name),
    h("p", { class: "hint" }, `Tenant ${tenant.slug} · Lucca at ${tenant.lucca.base_url} · times in ${zone}`), glance);
  // A console link's session manages no credentials (the API refuses it): it does not see them.
  if (!state.me.expires_at) append(context.view, await accessSection(slug, zone));
  const base = `/api/v1/tenants/${slug}`;
  // Counted by the API over every run of the last 7 days.
  const failed = api("GET", `${base}/runs/failures`);
  const problems = api("GET", `${base}/alerts/problems?status=open`);
  const rows = await Promise.all(KINDS.map(async (kind) => {
    const [connector, last, counts] = await Promise.all([
      connectorOf(slug, kind),
      api("GET", `${base}/runs${query({ connector: kind, limit: 1 })}`),
      failed,
    ]);
    const lastRun = last.items[0];
    const failures = counts.connectors[kind] || 0;
    return h("tr", {},
      h("th", { scope: "row" }, link(tenantPath(slug, `/connectors/${kind}`), KIND_NAMES[kind])),
      h("td", {}, connector ? (connector.enabled ? "Enabled" : "Disabled") : "Not set up"),
      h("td", {}, lastRun ? link(tenantPath(slug, `/runs/${lastRun.id}`), formatDate(lastRun.created_at, zone)) : "No run yet"),
      h("td", {}, lastRun ? badge(lastRun.status) : "—"),
      h("td", {}, failures ? link(tenantPath(slug, `/runs?connector=${kind}&status=failed`), String(failures)) : "0"),
      h("td", {}, link(tenantPath(slug, `/connectors/${kind}`), connector ? "Settings" : "Set up")));
  }));
  const open = (await problems).items.length;
  if (!context.live()) return;
  fill(glance,
    h("p", { class: `notice ${open ? "error" : "ok"}` }, open ? `${plural(open, "problem")} open now: ` : "No problem open now · ",
      link(tenantPath(slug, "/alerts"), open ? "see them in Alerts" : "Alerts")),
    h("h2", {}, "Connectors"),
    table(["Connector", "State", "Last run", "Its status", "Failures (7 days)", ""], rows));
  append(context.view, await directorySection(context, slug, zone));
}

// The tenant's copy of its Lucca directory: how full and fresh it is, how it is kept fresh, and a full sync now.
const MODES = { webhooks: "Lucca's webhooks", polling: "Polling Lucca" };
const SYNC_STATES = { loading: "Loading", ready: "Complete", failed: "Failed (the copy keeps what it had)", none: "None yet" };
const WEBHOOK_STATES = { active: "Active", pending: "Pending", failed: "Failed", none: "None" };

function lagText(seconds) {
  if (seconds === null || seconds === undefined) return "Not known yet (before the first full sync)";
  if (seconds < 120) return `${seconds} s`;
  return seconds < 7200 ? `${Math.round(seconds / 60)} min` : `${Math.round(seconds / 3600)} h`;
}

async function directorySection(context, slug, zone) {
  const path = `/api/v1/tenants/${slug}/lucca/directory`;
  const section = h("section", { class: "card", "aria-labelledby": "directory-heading" });
  const facts = h("div", { "aria-live": "polite" }, h("p", { class: "loading" }, "Loading the directory…"));
  const started = h("div", { "aria-live": "polite" });
  async function load() {
    let directory;
    try {
      directory = await api("GET", path);
    } catch (error) {
      if (context.live()) fill(facts, h("p", { class: "error", role: "alert" }, errorText(error)));
      return;
    }
    if (!context.live()) return;
    const sync = directory.sync;
    const progress = sync.status === "loading" ? ` · ${sync.progress.toLocaleString("en")} people read so far` : "";
    const webhook = WEBHOOK_STATES[directory.webhook.status] || directory.webhook.status;
    const rows = [
      ["Employees", directory.employees.toLocaleString("en")],
      ["Departments", directory.departments.toLocaleString("en")],
      ["Kept fresh by", MODES[directory.mode] || directory.mode],
      ["Lag", lagText(directory.lag_seconds)],
      ["Last full sync", directory.last_full_sync_at ? formatDate(directory.last_full_sync_at, zone) : "Never"],
      ["Last change", directory.last_change_at ? formatDate(directory.last_change_at, zone) : "None yet"],
      ["Latest full sync", `${SYNC_STATES[sync.status] || sync.status}${progress}`],
      ["Webhook", directory.webhook.message ? `${webhook}: ${directory.webhook.message}` : webhook],
      ...(directory.message ? [["Keeping it fresh", directory.message]] : []),
    ].map(([name, value]) => h("tr", {}, h("th", { scope: "row" }, name), h("td", {}, value)));
    fill(facts, table(["What", "Now"], rows, "The directory's copy"),
      sync.run_id ? h("p", {}, link(tenantPath(slug, `/runs/${sync.run_id}`), "The latest full sync's run")) : null,
      directory.notices.length ? h("div", { class: "notices" }, h("h3", {}, "What Lucca announced"),
        h("ul", {}, directory.notices.map((text) => h("li", {}, text)))) : null);
    if (sync.status === "loading") refreshLater(context, load);
  }
  append(section, h("h2", { id: "directory-heading" }, "Lucca directory"),
    h("p", { class: "hint" }, "The service's own copy of Lucca's employees and departments, which Cards and Elevo read."),
    facts,
    h("div", { class: "actions" }, button("Full sync", async () => {
      try {
        const accepted = await api("POST", `${path}/sync`);
        await watchRun(slug, accepted.run_id, started, load);
      } catch (error) {
        fill(started, h("p", { class: "error", role: "alert" }, errorText(error)));
      }
    })), started);
  await load();
  return section;
}

// What a listing read from the directory's copy says while the copy's first full sync has not completed.
function directoryLoading(listing) {
  const directory = listing.directory;
  if (!directory || directory.status !== "loading") return null;
  return h("p", { class: "notice", role: "status" },
    `Directory still loading (${directory.progress.toLocaleString("en")} people read). ${directory.message}`);
}

// The tenant key and the console links: rotate the key (the new one shown once), list the live links, end them.
async function accessSection(slug, zone) {
  const base = `/api/v1/tenants/${slug}`;
  const once = h("div", { "aria-live": "polite" });
  const made = h("div", { "aria-live": "polite" });
  const links = h("div", { "aria-live": "polite" });
  async function loadLinks() {
    const listing = await api("GET", `${base}/console-links`);
    const rows = listing.items.map((item) => h("tr", {},
      h("td", {}, formatDate(item.created_at, zone)), h("td", {}, formatDate(item.expires_at, zone)), h("td", {}, MINTED_BY[item.minted_by]),
      h("td", {}, button("End it", () => act(async () => {
        await api("DELETE", `${base}/console-links/${item.id}`);
        notice("The link is ended: it signs nobody in any more.", "ok");
      }), { class: "secondary", "aria-label": `End it: the link made ${formatDate(item.created_at, zone)}` }))));
    fill(links, rows.length ? table(["Made", "Works until", "Made by", ""], rows) : empty("No live console link."),
      rows.length ? askFirst("End every link", "Everyone signed in with a link to this tenant is signed out at once. End every link?", "Yes, end every link",
        () => act(async () => {
          await api("DELETE", `${base}/console-links`);
          notice("Every console link is ended.", "ok");
        })) : null);
  }
  async function act(change) {
    try {
      await change();
      await loadLinks();
    } catch (error) {
      notice(errorText(error), "error");
    }
  }
  const rotate = askFirst("Rotate the tenant key", "The current key stops working at once, everywhere, and so do the console links it made. Rotate it?", "Yes, rotate it",
    () => act(async () => {
      const rotated = await api("POST", `${base}/rotate-key`);
      // Signed in with the key just rotated: this tab goes on with the new one.
      if (state.me.role === "tenant") sessionStorage.setItem(TOKEN_KEY, rotated.api_key);
      fill(once, h("div", { class: "card" }, h("h2", {}, "New tenant key"),
        shownOnce("Tenant key", rotated.api_key, "The new tenant key is shown this once: keep it somewhere safe. The previous key no longer works, nor do the console links it made.")));
      once.querySelector("input").focus();
    }));
  await loadLinks();
  return h("section", { class: "card" }, h("h2", {}, "Access"),
    h("h3", {}, "Tenant key"), h("p", {}, "A new key for this tenant's API and console, for when the current one may have leaked."), rotate, once,
    h("h3", {}, "Console links"), h("p", {}, "Links that sign someone in to this tenant's console without its key, each until it expires or is ended here."),
    links, consoleLinkButton(slug, made, loadLinks), made);
}

// A button for what cannot be undone: it asks first, and `act` runs on yes.
function askFirst(label, question, yes, act) {
  const area = h("div", {});
  function ask() {
    fill(area, button(label, () => {
      fill(area, h("p", {}, question), button(yes, async () => {
        await act();
        ask();
      }), button("Cancel", ask, { class: "secondary" }));
      area.querySelector("button").focus();
    }));
  }
  ask();
  return area;
}

// ---------------------------------------------------------------------------------------------------------------
// A connector: its settings as a form the API validates, Check connection, token rotation.

function settingsSchema(document, kind) {
  const path = document.paths[`/api/v1/tenants/{slug}/connectors/${kind}`];
  const body = path && path.put && path.put.requestBody;
  return body ? body.content["application/json"].schema.properties.settings : null;
}

function plain(schema) {
  if (schema && schema.anyOf) {
    const inner = schema.anyOf.find((option) => option.type !== "null") || {};
    return { ...inner, ...Object.fromEntries(Object.entries(schema).filter(([key]) => key !== "anyOf")), nullable: true };
  }
  return schema || {};
}

function humanize(name) {
  const text = name.replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function operationName(operation) {
  return OPERATION_NAMES[operation] || humanize(operation);
}

// Builds the controls of one object schema; returns a reader of their values and a finder of fields by path.
function settingsFields(schema, values, path, container) {
  const readers = [];
  const fields = {};
  const required = new Set(schema.required || []);
  for (const [name, raw] of Object.entries(schema.properties || {})) {
    const prop = plain(raw);
    const fieldPath = [...path, name];
    const key = fieldPath.join(".");
    const words = SETTING_WORDS[fieldPath.slice(1).join(".")] || {};
    const label = (words.label || humanize(name)) + (required.has(name) && !SECRET_FIELDS.has(name) ? " (required)" : "");
    const value = values ? values[name] : undefined;
    const current = value === undefined ? prop.default : value;
    if (prop.type === "object" && prop.properties) {
      const about = words.help || prop.description;
      const fieldset = h("fieldset", {}, h("legend", {}, words.label || humanize(name)), about ? h("p", { class: "hint" }, about) : null);
      container.append(fieldset);
      const nested = settingsFields(prop, current || {}, fieldPath, fieldset);
      Object.assign(fields, nested.fields);
      fields[key] = { control: fieldset, error: fieldset.appendChild(h("p", { class: "field-error", "aria-live": "polite" })) };
      readers.push((target) => { target[name] = nested.read(); });
      continue;
    }
    if (prop.type === "object") {
      const editor = mapEditor(humanize(name), prop, current || {}, prop.description);
      container.append(editor.wrapper);
      fields[key] = editor;
      readers.push((target) => { target[name] = editor.read(); });
      continue;
    }
    let control;
    if (prop.type === "boolean") {
      control = h("input", { type: "checkbox", name: key, checked: Boolean(current) });
    } else if (prop.enum) {
      control = h("select", { name: key }, prop.nullable ? h("option", { value: "" }, "—") : null,
        prop.enum.map((option) => h("option", { value: String(option), selected: option === current }, (words.options || {})[option] || String(option))));
    } else if (prop.type === "array") {
      control = h("textarea", { name: key, rows: 3 }, (current || []).join("\n"));
    } else if (SECRET_FIELDS.has(name)) {
      const stored = current === "***";
      control = MULTILINE_FIELDS.has(name) ? h("textarea", { name: key, rows: 4, spellcheck: "false" })
        : h("input", { type: "password", name: key, autocomplete: "new-password" });
      control.placeholder = stored ? "Stored: leave empty to keep it" : "";
    } else if (MULTILINE_FIELDS.has(name)) {
      control = h("textarea", { name: key, rows: 3, spellcheck: "false" }, current || "");
    } else {
      const numeric = prop.type === "integer" || prop.type === "number";
      control = h("input", { type: numeric ? "number" : "text", name: key, value: current === null || current === undefined ? "" : String(current),
        min: numeric ? prop.minimum : null, max: numeric ? prop.maximum : null });
    }
    const help = [words.help || prop.description, prop.type === "array" ? "One per line." : null, boundsText(prop)].filter(Boolean).join(" ");
    const field = labelled(label, control, help);
    container.append(field.wrapper);
    fields[key] = field;
    readers.push((target) => {
      const read = readControl(prop, control, name);
      if (read !== undefined) target[name] = read;
    });
  }
  return { fields, read: () => { const target = {}; for (const reader of readers) reader(target); return target; } };
}

// A number's bounds from its schema, said in the help (the form does not block them: the API's 422 does).
function boundsText(prop) {
  const [low, high] = [prop.minimum, prop.maximum];
  if (prop.type !== "integer" && prop.type !== "number") return null;
  if (low !== undefined && high !== undefined) return `From ${low} to ${high}.`;
  if (low !== undefined) return `At least ${low}.`;
  return high !== undefined ? `At most ${high}.` : null;
}

function readControl(prop, control, name) {
  if (prop.type === "boolean") return control.checked;
  const raw = control.value.trim();
  if (raw === "") return undefined; // left out: the default (and, for a secret, the stored one)
  if (prop.type === "array") {
    const items = raw.split("\n").map((line) => line.trim()).filter(Boolean);
    const itemType = plain(prop.items).type;
    return items.map((item) => (itemType === "integer" || itemType === "number" ? Number(item) : item));
  }
  if ((prop.type === "integer" || prop.type === "number") && !SECRET_FIELDS.has(name)) return Number(raw);
  return SECRET_FIELDS.has(name) || MULTILINE_FIELDS.has(name) ? control.value : raw;
}

// A mapping (e.g. company → establishment id) as rows of two inputs.
function mapEditor(label, prop, values, help) {
  const valueType = plain(prop.additionalProperties).type;
  const rows = h("div", { class: "map-rows" });
  const error = h("p", { class: "field-error", "aria-live": "polite" });
  const wrapper = h("fieldset", { class: "map" }, h("legend", {}, label), help ? h("p", { class: "hint" }, help) : null, rows);
  function addRow(key, value) {
    const keyInput = h("input", { type: "text", value: key, "aria-label": `${label}: name` , class: "map-key" });
    const valueInput = h("input", { type: valueType === "integer" ? "number" : "text", value: value === undefined ? "" : String(value), "aria-label": `${label}: value`, class: "map-value" });
    const row = h("div", { class: "map-row" }, keyInput, h("span", { "aria-hidden": "true" }, "→"), valueInput,
      button("Remove", () => row.remove(), { class: "secondary", "aria-label": `Remove this ${label} row` }));
    rows.append(row);
    return keyInput;
  }
  for (const [key, value] of Object.entries(values)) addRow(key, value);
  wrapper.append(button(`Add to ${label}`, () => addRow("", "").focus(), { class: "secondary" }), error);
  function read() {
    const result = {};
    for (const row of rows.querySelectorAll(".map-row")) {
      const key = row.querySelector(".map-key").value.trim();
      const value = row.querySelector(".map-value").value.trim();
      if (key) result[key] = valueType === "integer" && value !== "" ? Number(value) : value;
    }
    return result;
  }
  return { wrapper, control: wrapper, error, read };
}

async function connectorView(context, slug, kind) {
  if (!KINDS.includes(kind)) throw new ApiError(404, `There is no ${kind} connector.`);
  const name = KIND_NAMES[kind];
  const [tenant, document] = await Promise.all([tenantOf(slug), openapi()]);
  const base = `/api/v1/tenants/${slug}/connectors/${kind}`;
  let connector = await connectorOf(slug, kind);
  if (!context.live()) return;
  append(context.view, h("h1", { tabindex: "-1" }, `${name} connector`), h("p", { class: "hint" }, `${tenant.name} · ${connector ? (connector.enabled ? "enabled" : "disabled") : "not set up yet"}`));
  const schema = settingsSchema(document, kind);
  if (!schema) {
    append(context.view, empty(`The ${name} connector is not available on this service yet.`));
    return;
  }
  const once = h("div", { "aria-live": "polite" });
  const checks = h("div", { "aria-live": "polite" });
  const formArea = h("div", {});
  append(context.view, once, formArea);
  function showForm() {
    const form = h("form", { class: "card", novalidate: true });
    const enabled = labelled("Enabled", h("input", { type: "checkbox", name: "enabled", checked: connector ? connector.enabled : true }));
    form.append(h("h2", {}, "Settings"), enabled.wrapper);
    const built = settingsFields(schema, connector ? connector.settings : {}, ["settings"], form);
    const formError = h("p", { class: "error", role: "alert" });
    form.append(formError, h("button", { type: "submit" }, connector ? "Save the settings" : `Set up ${name}`));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form, formError);
      try {
        const saved = await api("PUT", base, { enabled: enabled.control.checked, settings: built.read() });
        connector = saved;
        showForm();
        notice(`The ${name} settings are saved.`, "ok");
        if (saved.webhook_token) fill(once, webhookPanel(kind, saved.webhook_token));
      } catch (error) {
        showErrors(error, formError, (loc) => (loc[0] === "body" && loc[1] === "enabled" ? enabled : built.fields[loc.slice(1).join(".")]));
      }
    });
    fill(formArea, form);
  }
  showForm();
  const actions = h("section", { class: "card" }, h("h2", {}, "Connection"),
    h("p", {}, `One cheap call to Lucca${kind === "softgarden" ? "" : ` and to ${name}`} with the saved settings; nothing is changed.`),
    button("Check connection", async (event) => {
      const target = event.currentTarget;
      target.disabled = true;
      fill(checks, h("p", { class: "loading" }, "Checking…"));
      try {
        const result = await api("POST", `${base}/check`);
        fill(checks, h("ul", { class: "checks" }, result.checks.map((check) =>
          h("li", { class: check.ok ? "ok" : "fail" }, h("strong", {}, `${check.ok ? "✓" : "✗"} ${KIND_NAMES[check.partner] || humanize(check.partner)}: `), check.message))));
      } catch (error) {
        fill(checks, h("p", { class: "error", role: "alert" }, error.status === 404 ? "Save the settings first: there is nothing to check yet." : errorText(error)));
      } finally {
        target.disabled = false;
      }
    }), checks);
  append(context.view, actions);
  if (WEBHOOK_KINDS.includes(kind)) append(context.view, rotateSection(kind, base, once));
  append(context.view, h("p", {}, link(tenantPath(slug, `/runs?connector=${kind}`), `See the ${name} runs`)));
}

function webhookUrl(kind, webhookToken) {
  const origin = window.location.origin;
  return kind === "softgarden" ? `${origin}/integrations/webhooks/softgarden/candidate-hired` : `${origin}/integrations/webhooks/cards/${webhookToken}`;
}

function webhookPanel(kind, webhookToken) {
  const name = KIND_NAMES[kind];
  const how = kind === "softgarden"
    ? "Give Softgarden this URL and the token below, sent as Authorization: Bearer <token>."
    : "Give Cards this URL: the token is part of it.";
  return h("div", { class: "card" }, h("h2", {}, `${name} webhook`), h("p", {}, how),
    shownOnce("Webhook URL", webhookUrl(kind, webhookToken)),
    shownOnce("Webhook token", webhookToken, "Shown this once: the previous token, if any, no longer works."));
}

function rotateSection(kind, base, target) {
  return h("section", { class: "card" }, h("h2", {}, "Webhook token"),
    h("p", {}, `A new token for ${KIND_NAMES[kind]}'s webhooks: the current one stops working at once.`),
    askFirst("Rotate the webhook token", "The current token will stop working at once. Rotate it?", "Yes, rotate it", async () => {
      try {
        const rotated = await api("POST", `${base}/rotate-token`);
        fill(target, webhookPanel(kind, rotated.webhook_token));
        target.querySelector("input").focus();
      } catch (error) {
        notice(error.status === 404 ? "Save the settings first." : errorText(error), "error");
      }
    }));
}

// ---------------------------------------------------------------------------------------------------------------
// Runs: filtered, newest first, refreshing while any is queued or running; the search by person; retry-failed.

function countsText(counts) {
  const parts = OUTCOMES.filter((outcome) => counts[outcome]).map((outcome) => `${counts[outcome]} ${outcome}`);
  return `${counts.total} item${counts.total === 1 ? "" : "s"}${parts.length ? `: ${parts.join(", ")}` : ""}`;
}

function selectField(label, name, options, current) {
  return labelled(label, h("select", { name }, options.map(([value, text]) => h("option", { value, selected: value === current }, text))));
}

async function runsView(context, slug) {
  const tenant = await tenantOf(slug);
  const zone = tenant.timezone;
  const filters = { connector: context.params.get("connector") || "", status: context.params.get("status") || "", subject: context.params.get("subject") || "" };
  const connector = selectField("Connector", "connector", [["", "All connectors"], ...KINDS.map((kind) => [kind, KIND_NAMES[kind]])], filters.connector);
  const status = selectField("Status", "status", [["", "Any status"], ...STATUSES.map((item) => [item, item])], filters.status);
  const subject = labelled("Person", h("input", { type: "search", name: "subject", value: filters.subject, placeholder: "an email, a name or a Lucca id" }),
    "Finds the runs whose events are about them (case and accents ignored).");
  const form = h("form", { class: "filters", role: "search", onsubmit: (event) => {
    event.preventDefault();
    go(tenantPath(slug, `/runs${query({ connector: connector.control.value, status: status.control.value, subject: subject.control.value.trim() })}`));
  } }, connector.wrapper, status.wrapper, subject.wrapper, h("button", { type: "submit" }, "Show"));
  const list = h("div", { "aria-live": "polite" }, h("p", { class: "loading" }, "Loading the runs…"));
  append(context.view, h("h1", { tabindex: "-1" }, "Runs"), h("p", { class: "hint" }, `${tenant.name} · times in ${zone}`), form, list);
  async function load() {
    const runs = await api("GET", `/api/v1/tenants/${slug}/runs${query({ ...filters, limit: 100 })}`);
    if (!context.live()) return;
    const rows = runs.items.map((run) => h("tr", {},
      h("td", {}, link(tenantPath(slug, `/runs/${run.id}`), formatDate(run.created_at, zone))),
      h("td", {}, KIND_NAMES[run.connector] || run.connector), h("td", {}, operationName(run.operation)), h("td", {}, TRIGGER_NAMES[run.trigger] || run.trigger),
      h("td", {}, badge(run.status)), h("td", {}, countsText(run.counts)), h("td", {}, run.error || "")));
    let none = "No run yet: the first hire will show here.";
    if (filters.subject) none = `No run is about “${filters.subject}”.`;
    else if (filters.connector || filters.status) none = "No run matches these filters.";
    fill(list, rows.length ? table(["Created", "Connector", "What", "Trigger", "Status", "Items", "Error"], rows, `${rows.length} run${rows.length === 1 ? "" : "s"}, newest first`) : empty(none));
    if (runs.items.some((run) => UNFINISHED.includes(run.status))) refreshLater(context, load);
  }
  await load();
  append(context.view, retryFailedForm(slug, zone, load));
}

function retryFailedForm(slug, zone, reload) {
  const since = labelled(`Since (${zone})`, h("input", { type: "datetime-local", name: "since", required: true, value: isoToZoned(Date.now() - 24 * 3600 * 1000, zone) }));
  const connector = selectField("Connector", "retry-connector", [["", "All connectors"], ...KINDS.map((kind) => [kind, KIND_NAMES[kind]])], "");
  const result = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "card", novalidate: true }, h("h2", {}, "Retry all failed since…"),
    h("p", {}, "For the day a partner was down: every failed or partial run created since then, and not already retried with success, is retried once."),
    since.wrapper, connector.wrapper, h("button", { type: "submit" }, "Retry all failed"), result);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fill(since.error);
    if (!since.control.value) {
      fill(since.error, "Give the moment to retry from.");
      return;
    }
    try {
      const body = { since: zonedToIso(since.control.value, zone) };
      if (connector.control.value) body.connector = connector.control.value;
      const accepted = await api("POST", `/api/v1/tenants/${slug}/runs/retry-failed`, body);
      const count = accepted.run_ids.length;
      fill(result, h("p", { class: "notice ok" }, count ? `${count} run${count === 1 ? "" : "s"} retried.` : "Nothing to retry: no failed run in that window is left without a retry."),
        count ? h("ul", {}, accepted.run_ids.map((id) => h("li", {}, link(tenantPath(slug, `/runs/${id}`), `Retry ${id.slice(0, 8)}`)))) : null);
      if (count) await reload();
    } catch (error) {
      showErrors(error, result, (loc) => (loc[1] === "since" ? since : loc[1] === "connector" ? connector : null));
    }
  });
  return form;
}

async function runView(context, slug, runId) {
  const tenant = await tenantOf(slug);
  const zone = tenant.timezone;
  const base = `/api/v1/tenants/${slug}/runs/${runId}`;
  const body = h("div", {});
  const events = h("div", { "aria-live": "polite" });
  append(context.view, body, events);
  let first = true;
  // Events come a page at a time: the next page is read when the last one was not full (new events of a running
  // run), or on "Show more" after a full one.
  const eventRows = [];
  let cursor = null;
  let pageFull = false;
  let finished = false;
  async function readEvents() {
    const page = await api("GET", `${base}/events?limit=${EVENTS_PAGE}${cursor ? `&after=${encodeURIComponent(cursor)}` : ""}`);
    eventRows.push(...page.items.map((event) => h("tr", { class: `level-${event.level}` },
      h("td", {}, formatDate(event.at, zone)), h("td", {}, event.level), h("td", {}, event.subject), h("td", {}, event.action), h("td", {}, event.message))));
    cursor = page.next || cursor;
    pageFull = page.items.length === EVENTS_PAGE && page.next !== null;
    finished = page.next === null;
  }
  function showEvents() {
    const showMore = pageFull ? button("Show more", async () => {
      await readEvents();
      if (context.live()) showEvents();
    }) : null;
    fill(events, h("h2", {}, "Events"),
      eventRows.length ? table(["At", "Level", "Who", "What", "Message"], eventRows) : empty("No event yet: the run has not started its work."),
      showMore);
  }
  async function load() {
    const [run] = await Promise.all([api("GET", base), pageFull || finished ? null : readEvents()]);
    if (!context.live()) return;
    const counts = run.counts;
    const done = OUTCOMES.reduce((sum, outcome) => sum + (counts[outcome] || 0), 0);
    const progressId = newId("progress");
    const retryArea = h("div", { "aria-live": "polite" });
    fill(body,
      h("h1", { tabindex: "-1" }, `${operationName(run.operation)} (${KIND_NAMES[run.connector] || run.connector})`),
      h("p", { class: "status-line" }, "Status: ", badge(run.status), UNFINISHED.includes(run.status) ? h("span", { class: "hint" }, " · updates by itself") : null),
      h("div", { class: "progress" }, h("label", { for: progressId }, `${done} of ${counts.total} item${counts.total === 1 ? "" : "s"} done`),
        h("progress", { id: progressId, max: String(Math.max(counts.total, 1)), value: String(Math.min(done, Math.max(counts.total, 1))) })),
      h("p", {}, countsText(counts)),
      h("dl", { class: "facts" },
        h("dt", {}, "Created"), h("dd", {}, formatDate(run.created_at, zone)),
        h("dt", {}, "Started"), h("dd", {}, formatDate(run.started_at, zone)),
        h("dt", {}, "Finished"), h("dd", {}, formatDate(run.finished_at, zone)),
        h("dt", {}, "Trigger"), h("dd", {}, TRIGGER_NAMES[run.trigger] || run.trigger),
        run.retry_of ? [h("dt", {}, "Retries"), h("dd", {}, link(tenantPath(slug, `/runs/${run.retry_of}`), "the run it redoes"))] : null,
        run.retried_by ? [h("dt", {}, "Retried by"), h("dd", {}, link(tenantPath(slug, `/runs/${run.retried_by}`), "its latest retry"))] : null,
        run.error ? [h("dt", {}, "Error"), h("dd", {}, run.error)] : null),
      RETRYABLE.includes(run.status) ? h("div", {}, button("Retry", async () => {
        try {
          const accepted = await api("POST", `${base}/retry`);
          go(tenantPath(slug, `/runs/${accepted.run_id}`));
        } catch (error) {
          fill(retryArea, h("p", { class: "error", role: "alert" }, errorText(error)));
        }
      }), retryArea) : null);
    showEvents();
    if (first) {
      first = false;
      body.querySelector("h1").focus({ preventScroll: true });
    }
    if (UNFINISHED.includes(run.status)) refreshLater(context, load);
  }
  await load();
}

// ---------------------------------------------------------------------------------------------------------------
// Cards: people and departments to import, with the options; the statistics push.

async function watchRun(slug, runId, target, onDone) {
  const zone = (await tenantOf(slug)).timezone;
  const mine = generation;
  async function poll() {
    if (mine !== generation) return;
    const run = await api("GET", `/api/v1/tenants/${slug}/runs/${runId}`);
    if (mine !== generation) return;
    fill(target, h("p", { class: "notice info" }, "Run ", link(tenantPath(slug, `/runs/${runId}`), `started ${formatDate(run.created_at, zone)}`), ": ", badge(run.status), ` · ${countsText(run.counts)}`));
    if (UNFINISHED.includes(run.status)) {
      clearTimeout(timer);
      timer = setTimeout(poll, REFRESH_MS);
    } else if (onDone) {
      onDone();
    }
  }
  await poll();
}

function checkedIds(container) {
  return [...container.querySelectorAll("input[type=checkbox][data-id]:checked")].map((box) => Number(box.dataset.id));
}

function selectable(id, label, enabled) {
  return h("input", { type: "checkbox", "data-id": String(id), "aria-label": label, disabled: !enabled });
}

// Whether Cards follows the directory on its own, in the settings' own words.
function autoSyncLine(slug, follow) {
  const on = follow.users || follow.departments !== "none" || follow.leavers !== "keep";
  const choice = (path, value) => SETTING_WORDS[path].options[value].toLowerCase();
  const text = on
    ? `Auto sync is on: Cards follows Lucca's directory within a minute. Users: ${follow.users ? "every current employee" : "only those imported"}; `
      + `departments kept as groups: ${choice("auto_sync.departments", follow.departments)}; leavers: ${choice("auto_sync.leavers", follow.leavers)}.`
    : "Auto sync is off: people reach Cards through the imports below.";
  return h("p", { class: "notice info" }, text, " ", link(tenantPath(slug, "/connectors/cards"), "Change it in the settings"),
    on ? [" · ", link(tenantPath(slug, "/runs?connector=cards"), "See the Cards runs")] : null);
}

async function cardsView(context, slug) {
  const tenant = await tenantOf(slug);
  const base = `/api/v1/tenants/${slug}/cards`;
  const connector = await connectorOf(slug, "cards");
  if (!context.live()) return;
  append(context.view, h("h1", { tabindex: "-1" }, "Cards"), h("p", { class: "hint" }, `${tenant.name} · Lucca employees and departments into Cards`));
  if (!connector) {
    append(context.view, empty("The Cards connector is not set up yet."), h("p", {}, link(tenantPath(slug, "/connectors/cards"), "Set up Cards")));
    return;
  }
  const settings = connector.settings;
  append(context.view, autoSyncLine(slug, settings.auto_sync));
  const notify = labelled("Notify created users (Cards emails them to set a password or sign in)", h("input", { type: "checkbox", name: "notify", checked: Boolean(settings.notify_created_users) }));
  const loginMode = selectField("Login mode of created accounts", "login_mode", LOGIN_MODES.map((mode) => [mode, mode]), settings.login_mode);
  const userStatus = selectField("Show", "status", [["", "Everyone"], ...Object.entries(CARDS_STATUSES)], context.params.get("status") || "");
  const users = h("div", { "aria-live": "polite" }, h("p", { class: "loading" }, "Loading the employees…"));
  const usersRun = h("div", { "aria-live": "polite" });
  const departments = h("div", { "aria-live": "polite" }, h("p", { class: "loading" }, "Loading the departments…"));
  const departmentsRun = h("div", { "aria-live": "polite" });
  const statsRun = h("div", { "aria-live": "polite" });

  async function importUsers(body) {
    try {
      const accepted = await api("POST", `${base}/users/import`, { ...body, notify: notify.control.checked, login_mode: loginMode.control.value });
      await watchRun(slug, accepted.run_id, usersRun, loadUsers);
    } catch (error) {
      fill(usersRun, h("p", { class: "error", role: "alert" }, errorText(error)));
    }
  }
  async function importDepartments(body) {
    try {
      const accepted = await api("POST", `${base}/departments/import`, body);
      await watchRun(slug, accepted.run_id, departmentsRun, () => { loadDepartments(); loadUsers(); });
    } catch (error) {
      fill(departmentsRun, h("p", { class: "error", role: "alert" }, errorText(error)));
    }
  }
  async function loadUsers() {
    try {
      const listing = await api("GET", `${base}/users${query({ status: userStatus.control.value })}`);
      if (!context.live()) return;
      const rows = listing.items.map((person) => {
        const name = [person.first_name, person.last_name].filter(Boolean).join(" ") || `Lucca user ${person.lucca_id}`;
        return h("tr", {}, h("td", {}, selectable(person.lucca_id, `Select ${name}`, person.status === "not_imported")),
          h("td", {}, name), h("td", {}, person.email || "—"), h("td", {}, person.department || "—"),
          h("td", {}, h("span", { class: `cards-status cards-${person.status}` }, CARDS_STATUSES[person.status] || person.status)));
      });
      const loading = directoryLoading(listing);
      if (loading) refreshLater(context, () => { loadUsers(); loadDepartments(); });
      fill(users, loading || (rows.length ? table(["Select", "Name", "Professional email", "Department", "Status"], rows) : empty(userStatus.control.value ? "Nobody has this status." : "Lucca has no current employee.")));
    } catch (error) {
      fill(users, h("p", { class: "error", role: "alert" }, errorText(error)));
    }
  }
  async function loadDepartments() {
    try {
      const listing = await api("GET", `${base}/departments`);
      if (!context.live()) return;
      const rows = listing.items.map((department) => h("tr", {},
        h("td", {}, selectable(department.lucca_id, `Select ${department.name}`, true)), h("td", {}, department.name),
        h("td", {}, String(department.members)), h("td", {}, department.imported ? "Yes" : "No")));
      const loading = directoryLoading(listing);
      fill(departments, loading || (rows.length ? table(["Select", "Department", "Members", "A Cards group"], rows) : empty("Lucca has no active department.")));
    } catch (error) {
      fill(departments, h("p", { class: "error", role: "alert" }, errorText(error)));
    }
  }
  userStatus.control.addEventListener("change", loadUsers);
  append(context.view,
    h("section", { class: "card" }, h("h2", {}, "Import options"), h("p", { class: "hint" }, "For the people imported from this page; the settings' defaults otherwise."), notify.wrapper, loginMode.wrapper),
    h("section", { class: "card" }, h("h2", {}, "User sync"), userStatus.wrapper, users,
      h("div", { class: "actions" },
        button("Import selected", () => {
          const ids = checkedIds(users);
          if (!ids.length) fill(usersRun, h("p", { class: "error", role: "alert" }, "Select at least one person first."));
          else importUsers({ lucca_ids: ids });
        }),
        button("Import all", () => importUsers({ all: true }), { class: "secondary" })), usersRun),
    h("section", { class: "card" }, h("h2", {}, "Department sync"),
      h("p", { class: "hint" }, "Each department becomes a Cards group of the same name; its members get an account if they have none (with the settings' notify and login mode)."),
      departments,
      h("div", { class: "actions" },
        button("Import selected departments", () => {
          const ids = checkedIds(departments);
          if (!ids.length) fill(departmentsRun, h("p", { class: "error", role: "alert" }, "Select at least one department first."));
          else importDepartments({ department_ids: ids });
        }),
        button("Import all departments", () => importDepartments({ all: true }), { class: "secondary" })), departmentsRun),
    h("section", { class: "card" }, h("h2", {}, "Statistics"),
      h("p", {}, "Write each employee's Cards statistics to their Lucca file now, without waiting for the nightly push."),
      button("Sync statistics now", async () => {
        try {
          const accepted = await api("POST", `${base}/stats/sync`);
          await watchRun(slug, accepted.run_id, statsRun);
        } catch (error) {
          fill(statsRun, h("p", { class: "error", role: "alert" }, errorText(error)));
        }
      }), statsRun));
  await Promise.all([loadUsers(), loadDepartments()]);
}

// ---------------------------------------------------------------------------------------------------------------
// Elevo: the people file as it would be sent, who is left out and why; sending it now.

// When the file goes besides Send now: on change (push_on_change), nightly, or neither.
function pushLine(slug, settings) {
  const minutes = settings.min_interval_minutes;
  const text = settings.push_on_change
    ? `Push on change is on: a change in Lucca that changes the file sends a new one on its own, at most every ${minutes} minute${minutes === 1 ? "" : "s"}.`
    : `Push on change is off: the file goes ${settings.schedule_enabled ? "every night and " : ""}when sent from here.`;
  return h("p", { class: "hint" }, text, " ", link(tenantPath(slug, "/connectors/elevo"), "Change it in the settings"));
}

async function elevoView(context, slug) {
  const [tenant, connector] = await Promise.all([tenantOf(slug), connectorOf(slug, "elevo")]);
  const base = `/api/v1/tenants/${slug}/elevo`;
  append(context.view, h("h1", { tabindex: "-1" }, "Elevo"), h("p", { class: "hint" }, `${tenant.name} · the people file Elevo takes over SFTP`));
  const preview = h("div", { "aria-live": "polite" }, h("p", { class: "loading" }, "Building the preview…"));
  const sent = h("div", { "aria-live": "polite" });
  append(context.view, h("section", { class: "card" }, h("h2", {}, "Send now"),
    h("p", {}, "Upload the file below to Elevo's SFTP server now (people absent from it are suspended by Elevo)."),
    connector ? pushLine(slug, connector.settings) : null,
    button("Send now", async () => {
      try {
        const accepted = await api("POST", `${base}/sync`);
        await watchRun(slug, accepted.run_id, sent);
      } catch (error) {
        fill(sent, h("p", { class: "error", role: "alert" }, errorText(error)));
      }
    }), sent), preview);
  let file;
  try {
    file = await api("GET", `${base}/preview`);
  } catch (error) {
    if (!context.live()) return;
    const missing = error.status === 409 || error.status === 404;
    fill(preview, h("p", { class: "error", role: "alert" }, missing ? `${errorText(error)} ` : errorText(error)),
      missing ? h("p", {}, link(tenantPath(slug, "/connectors/elevo"), "Set up Elevo")) : null);
    return;
  }
  if (!context.live()) return;
  const loading = directoryLoading(file);
  if (loading) {
    fill(preview, loading);
    refreshLater(context, render);
    return;
  }
  const columns = file.rows.length ? Object.keys(file.rows[0]) : [];
  const rows = file.rows.map((row) => h("tr", {}, columns.map((column) => h("td", {}, row[column] ?? ""))));
  const leftOut = file.left_out.map((person) => h("tr", {}, h("td", {}, person.name || `Lucca user ${person.lucca_id}`), h("td", {}, person.email || "—"), h("td", {}, person.reason)));
  fill(preview,
    h("section", { class: "card" }, h("h2", {}, `The file: ${rows.length} ${rows.length === 1 ? "person" : "people"}`),
      rows.length ? table(columns, rows) : empty("Nobody would be in the file: Lucca has no current employee to send.")),
    h("section", { class: "card" }, h("h2", {}, `Left out: ${leftOut.length}`),
      leftOut.length ? table(["Name", "Email", "Why"], leftOut) : empty("Nobody is left out.")));
}

// ---------------------------------------------------------------------------------------------------------------
// Alerts: where a tenant's alerts go (e-mail, a signed webhook, Slack, Teams), a test, and the problems open now.

const CHANNEL_KINDS = { email: "E-mail", webhook: "Webhook (signed)", slack: "Slack", teams: "Microsoft Teams" };
const DELIVERY_STATES = { pending: "waiting to be sent", sent: "sent", failed: "not delivered" };

function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

// Where a channel's alerts go, in a few words: its addresses, or its URL (Slack's and Teams' shown without their
// secret part).
function channelTarget(channel) {
  return channel.kind === "email" ? (channel.to || []).join(", ") : channel.url || "";
}

async function alertsView(context, slug) {
  const tenant = await tenantOf(slug);
  const zone = tenant.timezone;
  const base = `/api/v1/tenants/${slug}/alerts`;
  let channels = (await api("GET", base)).channels;
  if (!context.live()) return;
  const once = h("div", { "aria-live": "polite" });
  const formArea = h("div", {});
  const tested = h("div", { "aria-live": "polite" });
  function showForm() {
    fill(formArea, channelsForm(base, channels, zone, (saved) => {
      channels = saved.channels;
      showForm();
      fill(tested);
      notice("The alert channels are saved.", "ok");
      const secrets = saved.channels.filter((channel) => channel.secret);
      fill(once, secrets.length ? h("div", { class: "card" }, h("h2", {}, "Webhook signing secret"),
        secrets.map((channel) => shownOnce(`Signing secret of ${channel.url}`, channel.secret,
          "Shown this once: it will not be shown again. The receiver verifies each alert's signature with it "
          + "(Standard Webhooks). The channel keeps it while its URL stays the same."))) : null);
      if (secrets.length) once.querySelector("input").focus();
    }));
  }
  showForm();
  append(context.view, h("h1", { tabindex: "-1" }, "Alerts"),
    h("p", { class: "hint" }, `${tenant.name} · who hears of a broken flow, and what is broken now · times in ${zone}`),
    await problemsSection(context, slug, zone),
    once, formArea,
    h("section", { class: "card" }, h("h2", {}, "Send a test"),
      h("p", {}, "A test alert to each saved channel now, to see that it arrives."),
      button("Send a test", async (event) => {
        const target = event.currentTarget;
        target.disabled = true;
        fill(tested, h("p", { class: "loading" }, "Sending…"));
        try {
          const result = await api("POST", `${base}/test`);
          fill(tested, result.channels.length ? h("ul", { class: "checks" }, result.channels.map((check) => {
            const channel = channels.find((saved) => saved.id === check.id);
            const where = channel ? channelTarget(channel) : "";
            return h("li", { class: check.ok ? "ok" : "fail" },
              h("strong", {}, `${check.ok ? "✓" : "✗"} ${CHANNEL_KINDS[check.kind] || check.kind}${where ? ` (${where})` : ""}: `), check.message);
          })) : empty("No channel to test: add one and save first."));
        } catch (error) {
          fill(tested, h("p", { class: "error", role: "alert" }, errorText(error)));
        } finally {
          target.disabled = false;
        }
      }), tested));
}

// The channels as a form: a kind and its addresses or URL each, added and removed here, saved all at once (PUT).
function channelsForm(base, channels, zone, onSaved) {
  const form = h("form", { class: "card", novalidate: true });
  const rows = h("div", {});
  const listError = h("p", { class: "field-error", "aria-live": "polite" });
  const formError = h("p", { class: "error", role: "alert" });
  const entries = [];
  function addRow(channel) {
    const entry = {};
    const kind = labelled("Kind", h("select", { name: "kind" },
      Object.entries(CHANNEL_KINDS).map(([value, text]) => h("option", { value, selected: value === channel.kind }, text))));
    const to = labelled("Addresses", h("textarea", { name: "to", rows: 2, spellcheck: "false" }, (channel.to || []).join("\n")),
      "One e-mail address per line (20 at most).");
    const url = labelled("URL", h("input", { type: "text", name: "url", value: channel.url || "", spellcheck: "false", autocomplete: "off" }));
    const urlHelp = h("p", { class: "hint" });
    url.wrapper.insertBefore(urlHelp, url.error);
    const slot = h("div", {});
    const legend = h("legend", {});
    const last = channel.last_alert;
    const fieldset = h("fieldset", { class: "channel" }, legend, kind.wrapper, slot,
      last ? h("p", { class: "hint" }, `Last alert (${last.event}): ${DELIVERY_STATES[last.status] || last.status}, `
        + `${formatDate(last.at, zone)}${last.error ? ` (${last.error})` : ""}`) : null,
      button("Remove this channel", () => {
        entries.splice(entries.indexOf(entry), 1);
        fieldset.remove();
        number();
      }, { class: "secondary" }));
    function showTarget() {
      const value = kind.control.value;
      fill(urlHelp, {
        webhook: "Each alert is POSTed as JSON, signed (Standard Webhooks): a new URL gets a new signing secret, shown once.",
        slack: "A Slack incoming webhook (https://hooks.slack.com/services/…). A saved one is shown without its secret part: leave it as it is to keep it.",
        teams: "A Teams workflow's webhook URL. A saved one is shown without its secret part: leave it as it is to keep it.",
      }[value] || "");
      fill(slot, value === "email" ? to.wrapper : url.wrapper);
    }
    kind.control.addEventListener("change", showTarget);
    showTarget();
    Object.assign(entry, { kind, to, url, fieldset, legend,
      error: fieldset.appendChild(h("p", { class: "field-error", "aria-live": "polite" })) });
    entries.push(entry);
    rows.append(fieldset);
    number();
    return kind.control;
  }
  // Each channel's legend says its place, which the API's messages name (`channels.0.url` is the first).
  function number() {
    entries.forEach((entry, index) => fill(entry.legend, `Channel ${index + 1}`));
    fill(listError, entries.length ? null : "No channel: alerts go nowhere. Add one below.");
  }
  function read() {
    return { channels: entries.map((entry) => {
      const kind = entry.kind.control.value;
      if (kind === "email") {
        return { kind, to: entry.to.control.value.split("\n").map((line) => line.trim()).filter(Boolean) };
      }
      return { kind, url: entry.url.control.value.trim() };
    }) };
  }
  // `channels.0.to.1` is shown next to the first channel's addresses, `channels.0` under the first channel.
  function fieldFor(loc) {
    if (loc[1] !== "channels") return null;
    if (loc.length === 2) return { control: rows, error: listError };
    const entry = entries[loc[2]];
    if (!entry) return null;
    if (loc.length === 3) return { control: entry.fieldset, error: entry.error };
    return { kind: entry.kind, to: entry.to, url: entry.url }[loc[3]] || null;
  }
  for (const channel of channels) addRow(channel);
  append(form, h("h2", {}, "Channels"),
    h("p", {}, "Where the alerts go: one alert when a problem opens, a reminder a day while it stays open, one when it is resolved."),
    rows, listError,
    button("Add a channel", () => addRow({ kind: "email" }).focus(), { class: "secondary" }),
    formError, h("div", { class: "actions" }, h("button", { type: "submit" }, "Save the channels")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form, formError);
    try {
      onSaved(await api("PUT", base, read()));
    } catch (error) {
      showErrors(error, formError, fieldFor);
    }
  });
  number();
  return form;
}

// Each alert of a problem to each channel: sent (when), waiting (its attempts so far and the next one), or not
// delivered; with the last attempt's error.
function alertLines(alerts, zone) {
  if (!alerts.length) return "None (no channel when it opened)";
  return h("ul", { class: "alerts" }, alerts.map((alert) => {
    let state = DELIVERY_STATES[alert.status] || alert.status;
    if (alert.status === "sent") state += ` ${formatDate(alert.sent_at, zone)}`;
    else if (alert.status === "failed") state += ` after ${plural(alert.attempts, "attempt")}`;
    else if (alert.attempts) state += ` (${plural(alert.attempts, "attempt")} so far, the next ${formatDate(alert.next_attempt_at, zone)})`;
    return h("li", { class: `alert-${alert.status}` },
      `${CHANNEL_KINDS[alert.channel_kind] || alert.channel_kind}, ${alert.event}: ${state}`,
      alert.error ? ` · ${alert.error}` : "");
  }));
}

function problemRuns(slug, problem) {
  const ids = problem.run_ids;
  const runs = [[ids.last, "The latest run"], [ids.first, "The first run"], [ids.resolved_by, "The run that resolved it"]];
  const shown = runs.filter(([id], index) => id && runs.findIndex(([other]) => other === id) === index);
  return shown.length ? h("ul", { class: "plain" }, shown.map(([id, text]) => h("li", {}, link(tenantPath(slug, `/runs/${id}`), text)))) : "—";
}

async function problemsSection(context, slug, zone) {
  const path = `/api/v1/tenants/${slug}/alerts/problems`;
  const open = h("div", { "aria-live": "polite" });
  const resolved = h("div", { "aria-live": "polite" });
  function rows(problems, closed) {
    return problems.map((problem) => h("tr", {},
      h("td", {}, h("strong", {}, problem.title), h("p", { class: "problem-message" }, problem.message)),
      h("td", {}, String(problem.count)),
      h("td", {}, formatDate(problem.opened_at, zone)),
      h("td", {}, formatDate(closed ? problem.resolved_at : problem.last_seen_at, zone)),
      h("td", {}, problemRuns(slug, problem)),
      h("td", {}, alertLines(problem.alerts, zone))));
  }
  async function load() {
    const listing = await api("GET", `${path}?status=open`);
    if (!context.live()) return;
    const problems = listing.items;
    fill(open, problems.length
      ? table(["Problem", "Count", "Since", "Last seen", "Runs", "Alerts"], rows(problems, false), `${plural(problems.length, "problem")} open now, newest first`)
      : empty("Nothing is broken: no problem is open."));
    // An alert on its way is shown until it is sent or given up.
    if (problems.some((problem) => problem.alerts.some((alert) => alert.status === "pending"))) refreshLater(context, load);
  }
  const show = button("Show the resolved problems", async (event) => {
    event.currentTarget.remove();
    try {
      const listing = await api("GET", `${path}?status=resolved`);
      if (!context.live()) return;
      fill(resolved, h("h3", {}, "Resolved"), listing.items.length
        ? table(["Problem", "Count", "Opened", "Resolved", "Runs", "Alerts"], rows(listing.items, true))
        : empty("No problem was resolved yet."));
    } catch (error) {
      fill(resolved, h("p", { class: "error", role: "alert" }, errorText(error)));
    }
  }, { class: "secondary" });
  await load();
  return h("section", { class: "card" }, h("h2", {}, "Problems"), open, show, resolved);
}

// ---------------------------------------------------------------------------------------------------------------

window.addEventListener("hashchange", () => {
  takeTokenFromFragment();
  // Only the page's own routes: an in-page anchor (the skip link) is not a route.
  if (window.location.hash === "" || window.location.hash.startsWith("#/")) render();
});

document.addEventListener("DOMContentLoaded", () => {
  takeTokenFromFragment();
  document.getElementById("skip").addEventListener("click", (event) => {
    event.preventDefault();
    document.getElementById("main").focus();
  });
  render();
});
