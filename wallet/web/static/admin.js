// The organizer's and finance's page. Sign-in: tokens minted with `wallet token --role admin` and
// `wallet token --role finance`, pasted here and kept in this tab's sessionStorage. Each section
// shows only when a token with its role is there.

import { ApiError, AttemptKeys, ConnectionLost, Session, currentPageSession, idempotentPost, newKey, request, tokenClaims, usePageSession } from "./api.js";
import { $, el, fill, labelCells, localDate, localDateTime, onSubmit, say, show, thisMonth } from "./dom.js";
import { categoryName, language, problemText, setUp, t } from "./i18n.js";
import { centsToInput, formatEuros, parseEuros } from "./money.js";
import { endPageSession, resumePageSession, signInOptions } from "./signin.js";
import { rerenderDesk, setUpDesk } from "./desk.js";

const MAX_BUDGET_LINES = 20;
const USAGE_PATH = "/v1/reports/usage";
const sessions = { admin: new Session("admin"), finance: new Session("finance") };
const state = {
  categories: new Map(), clients: new Map(), providers: new Map(), providerNames: new Map(), usage: false, settlements: [],
};
const creditKeys = new AttemptKeys();

const euros = (cents) => formatEuros(cents, language());

// null: the staff member signed in through the identity provider, and the session cookie speaks.
function tokenFor(...roles) {
  const signedIn = currentPageSession();
  if (signedIn && roles.includes(signedIn.role)) return null;
  for (const role of roles) {
    const token = sessions[role].token;
    if (token) return token;
  }
  throw new ApiError(401, { code: "unauthorized", detail: "signed out" });
}
const has = (role) => Boolean(sessions[role].token) || (currentPageSession() || {}).role === role;

function failed(region, error) {
  if (error instanceof ApiError && error.status === 401) {
    signOut("common.session_expired");
    return;
  }
  say(region, problemText(error), "error");
}

// Signing in.

function signIn(form) {
  const message = $("#signin-message");
  const pasted = { admin: form.get("admin").trim(), finance: form.get("finance").trim() };
  if (!pasted.admin && !pasted.finance) {
    say(message, t("admin.signin.missing"), "error");
    return;
  }
  for (const [role, token] of Object.entries(pasted)) {
    if (!token) continue;
    const claims = tokenClaims(token);
    if (!claims || claims.role !== role) {
      say(message, t("admin.signin.wrong_role", { role }), "error");
      return;
    }
    if (claims.exp * 1000 <= Date.now()) {
      say(message, t("admin.signin.expired", { role }), "error");
      return;
    }
  }
  for (const [role, token] of Object.entries(pasted)) if (token) sessions[role].save(token, 86_400);
  $("#admin-token").value = "";
  $("#finance-token").value = "";
  say(message, "");
  open();
}

function signOut(messageKey) {
  usePageSession(null);
  sessions.admin.clear();
  sessions.finance.clear();
  show($("#signed-in"), false);
  show($("#signin"));
  say($("#signin-message"), messageKey ? t(messageKey) : "", "error");
}

async function open() {
  if (!has("admin") && !has("finance")) {
    signOut();
    return;
  }
  show($("#signin"), false);
  show($("#signed-in"));
  $("#roles").textContent = ["admin", "finance"].filter(has).map((role) => t(`admin.role.${role}`)).join(", ");
  state.usage = await usageAvailable();
  for (const element of document.querySelectorAll("[data-needs]")) {
    const needs = element.dataset.needs;
    const visible = needs === "any" ? true : needs === "usage" ? state.usage : has(needs);
    show(element, visible);
  }
  show($("#usage"), state.usage);
  for (const input of ["#credit-month", "#budget-start", "#usage-month"]) if (!$(input).value) $(input).value = thisMonth();
  await loadCategories();
  if (!$("#budget-lines").children.length) addBudgetLine();
  await loadSettlements();
}

// The usage report is another team's route: offer it only where this server has it.
async function usageAvailable() {
  try {
    const document_ = await request("GET", "/v1/openapi.json");
    return Boolean(document_.paths && document_.paths[USAGE_PATH]);
  } catch {
    return false;
  }
}

// Categories.

async function loadCategories() {
  try {
    const page = await request("GET", "/v1/categories", { token: tokenFor("admin", "finance") });
    state.categories = new Map(page.data.map((c) => [c.code, c.name]));
  } catch (error) {
    failed($("#flash"), error);
    return;
  }
  $("#category-list").replaceChildren(...[...state.categories].map(([code, name]) => el("li", { text: `${name} (${code})` })));
  $("#provider-categories").replaceChildren(...[...state.categories].map(([code, name]) => el("div", { class: "choice" },
    el("input", { type: "checkbox", id: `provider-category-${code}`, name: "categories", value: code }),
    el("label", { for: `provider-category-${code}`, text: name }))));
  for (const select of document.querySelectorAll("#budget-lines select")) fillCategories(select);
}

function fillCategories(select) {
  const chosen = select.value;
  select.replaceChildren(...[...state.categories].map(([code, name]) => el("option", { value: code, text: name })));
  if (chosen && state.categories.has(chosen)) select.value = chosen;
}

async function createCategory(form) {
  const message = $("#category-message");
  try {
    const created = await request("POST", "/v1/categories", {
      token: tokenFor("admin"), body: { code: form.get("code").trim(), name: form.get("name").trim() },
    });
    say(message, t("admin.categories.created", { name: created.name }), "ok");
    $("#category-form").reset();
    await loadCategories();
  } catch (error) {
    failed(message, error);
  }
}

// Clients and budgets.

async function createClient(form) {
  const message = $("#client-message");
  const body = { name: form.get("name").trim(), phone: form.get("phone").trim() };
  const nationalId = form.get("national_id").trim().toUpperCase();
  if (nationalId) body.national_id = nationalId;
  try {
    const client = await request("POST", "/v1/clients", { token: tokenFor("admin"), body });
    rememberClient(client);
    $("#client-form").reset();
    $("#budget-client").value = client.id;
    $("#rep-client").value = client.id;
    say(message, t("admin.clients.created", { name: client.name, id: client.id }), "ok");
  } catch (error) {
    failed(message, error);
  }
}

function rememberClient(client) {
  const known = state.clients.get(client.id) || { budgets: [], mandates: [] };
  state.clients.set(client.id, { ...known, ...client });
  renderClients();
}

async function loadBudgets(clientId) {
  const page = await request("GET", `/v1/clients/${encodeURIComponent(clientId)}/budgets?limit=20`, { token: tokenFor("admin") });
  const client = state.clients.get(clientId);
  if (client) {
    client.budgets = page.data;
    renderClients();
  }
}

function budgetBlock(client, budget) {
  const described = `${budget.start_month} – ${budget.end_month}`;
  const inputId = `end-${budget.id}`;
  const form = el("form", { class: "inline-form", novalidate: true },
    el("label", { for: inputId, text: t("admin.budget.end_label", { period: described }) }),
    el("input", { id: inputId, name: "end_month", type: "month", required: true, value: budget.end_month }),
    el("button", { type: "submit", class: "secondary", text: t("admin.budget.end_submit"),
      "aria-label": t("admin.budget.end_submit_for", { name: client.name, period: described }) }));
  onSubmit(form, (fields) => endBudget(client, budget, fields.get("end_month")));
  return el("div", { class: "budget", dataset: { budgetId: budget.id } },
    el("p", { text: `${described}: ${budget.lines.map((l) => `${categoryName(l.category, state.categories)} ${euros(l.monthly_amount)}`).join(", ")}` }),
    form);
}

async function endBudget(client, budget, endMonth) {
  const message = $("#client-message");
  try {
    const ended = await request("POST", `/v1/clients/${encodeURIComponent(client.id)}/budgets/${encodeURIComponent(budget.id)}/end`, {
      token: tokenFor("admin"), body: { end_month: endMonth },
    });
    say(message, t("admin.budget.ended", { name: client.name, month: ended.end_month }), "ok");
    await loadBudgets(client.id);
  } catch (error) {
    failed(message, error);
  }
}

async function loadMandates(clientId) {
  const page = await request("GET", `/v1/clients/${encodeURIComponent(clientId)}/representatives?limit=50`, { token: tokenFor("admin") });
  const client = state.clients.get(clientId);
  if (client) {
    client.mandates = page.data;
    renderClients();
  }
}

function mandateBlock(client, mandate) {
  const who = `${mandate.name || mandate.phone}, ${mandate.phone}`;
  const scope = t(mandate.scope === "manage" ? "admin.reps.manage" : "admin.reps.view");
  return el("div", { class: "mandate", dataset: { representationId: mandate.id } },
    el("p", { text: `${who}: ${scope}${mandate.status === "revoked" ? ` (${t("admin.reps.revoked")})` : ""}` }),
    mandate.status === "active" ? el("button", {
      type: "button", class: "secondary", text: t("admin.reps.revoke"),
      "aria-label": t("admin.reps.revoke_for", { who, name: client.name }),
      onclick: (event) => revokeMandate(client, mandate, event.currentTarget),
    }) : null);
}

async function revokeMandate(client, mandate, button) {
  button.disabled = true;
  try {
    await request("POST", `/v1/clients/${encodeURIComponent(client.id)}/representatives/${encodeURIComponent(mandate.id)}/revoke`, { token: tokenFor("admin") });
    say($("#rep-message"), t("admin.reps.did_revoke", { who: mandate.name || mandate.phone, name: client.name }), "ok");
    await loadMandates(client.id);
  } catch (error) {
    failed($("#rep-message"), error);
  }
}

async function createMandate(form) {
  const message = $("#rep-message");
  const clientId = form.get("client_id").trim();
  const body = { phone: form.get("phone").trim(), scope: form.get("scope") };
  if (form.get("name").trim()) body.name = form.get("name").trim();
  if (form.get("national_id").trim()) body.national_id = form.get("national_id").trim().toUpperCase();
  try {
    const mandate = await request("POST", `/v1/clients/${encodeURIComponent(clientId)}/representatives`, { token: tokenFor("admin"), body });
    say(message, t("admin.reps.created", { who: mandate.name || mandate.phone }), "ok");
    for (const id of ["#rep-name", "#rep-phone", "#rep-national-id"]) $(id).value = "";
    if (state.clients.has(clientId)) await loadMandates(clientId);
  } catch (error) {
    failed(message, error);
  }
}

function renderClients() {
  $("#client-table tbody").replaceChildren(...[...state.clients.values()].map((client) => el("tr", { dataset: { clientId: client.id } },
    el("td", { text: client.name }),
    el("td", { text: client.phone }),
    el("td", { class: "secret", text: client.id }),
    el("td", {}, client.budgets.length ? client.budgets.map((budget) => budgetBlock(client, budget)) : "–"),
    el("td", {}, (client.mandates || []).length ? client.mandates.map((mandate) => mandateBlock(client, mandate)) : "–"),
    el("td", {}, el("button", {
      type: "button", class: "secondary", text: t("admin.clients.add_budget"),
      "aria-label": t("admin.clients.add_budget_for", { name: client.name }),
      onclick: () => { $("#budget-client").value = client.id; $("#budget-start").focus(); },
    }), el("button", {
      type: "button", class: "secondary", text: t("admin.reps.add"),
      "aria-label": t("admin.reps.add_for", { name: client.name }),
      onclick: () => { $("#rep-client").value = client.id; $("#rep-name").focus(); },
    })))));
  labelCells($("#client-table"));
  show($("#client-table"), state.clients.size > 0);
}

async function viewClient(form) {
  try {
    const client = await request("GET", `/v1/clients/${encodeURIComponent(form.get("id").trim())}`, { token: tokenFor("admin") });
    rememberClient(client);
    await Promise.all([loadBudgets(client.id), loadMandates(client.id)]);
    say($("#client-message"), t("admin.clients.opened", { name: client.name }), "ok");
  } catch (error) {
    failed($("#client-message"), error);
  }
}

function addBudgetLine(line = null) {
  const container = $("#budget-lines");
  if (container.children.length >= MAX_BUDGET_LINES) return;
  const index = `${Date.now().toString(36)}${container.children.length}`;
  const select = el("select", { id: `line-category-${index}`, name: "line_category" });
  fillCategories(select);
  if (line) select.value = line.category;
  const row = el("div", { class: "budget-line" },
    el("div", {}, el("label", { for: select.id, text: t("common.service") }), select),
    el("div", {},
      el("label", { for: `line-amount-${index}`, text: t("admin.budget.monthly") }),
      el("input", { id: `line-amount-${index}`, name: "line_amount", inputmode: "decimal", autocomplete: "off", required: true,
        value: line ? centsToInput(line.monthly_amount) : "" })),
    el("button", { type: "button", class: "secondary", text: t("admin.budget.remove_line"),
      onclick: () => { row.remove(); $("#budget-add-line").focus(); } }));
  container.append(row);
  return row;
}

async function createBudget(form) {
  const message = $("#budget-message");
  const categories = form.getAll("line_category");
  const amounts = form.getAll("line_amount").map(parseEuros);
  if (!categories.length) {
    say(message, t("admin.budget.need_line"), "error");
    return;
  }
  if (amounts.some((amount) => amount === null || amount <= 0)) {
    say(message, t("admin.budget.bad_amount"), "error");
    return;
  }
  const clientId = form.get("client_id").trim();
  const body = {
    start_month: form.get("start_month"),
    end_month: form.get("end_month"),
    unused: form.get("unused"),
    lines: categories.map((category, i) => ({ category, monthly_amount: amounts[i] })),
  };
  try {
    const budget = await request("POST", `/v1/clients/${encodeURIComponent(clientId)}/budgets`, { token: tokenFor("admin"), body });
    if (state.clients.has(clientId)) await loadBudgets(clientId);
    say(message, t("admin.budget.created", {
      start: budget.start_month, end: budget.end_month,
      total: euros(budget.lines.reduce((sum, line) => sum + line.monthly_amount, 0)),
    }), "ok");
  } catch (error) {
    failed(message, error);
  }
}

// Providers.

async function createProvider(form) {
  const message = $("#provider-message");
  const body = {
    name: form.get("name").trim(), business_id: form.get("business_id").trim(),
    iban: form.get("iban").replace(/\s+/g, "").toUpperCase(), categories: form.getAll("categories"),
  };
  if (!body.categories.length) {
    say(message, t("admin.providers.need_category"), "error");
    return;
  }
  try {
    const provider = await request("POST", "/v1/providers", { token: tokenFor("admin"), body });
    rememberProvider(provider);
    $("#provider-form").reset();
    say(message, t("admin.providers.created", { name: provider.name }), "ok");
  } catch (error) {
    failed(message, error);
  }
}

function rememberProvider(provider) {
  state.providers.set(provider.id, provider);
  renderProviders();
}

const PROVIDER_STATUS = { pending: "admin.providers.pending", approved: "admin.providers.approved", suspended: "admin.providers.suspended" };

function renderProviders() {
  $("#provider-table tbody").replaceChildren(...[...state.providers.values()].map((provider) => {
    const button = (key, action, kind = "secondary") => el("button", {
      type: "button", class: kind, text: t(key), "aria-label": `${t(key)}: ${provider.name}`,
      onclick: (event) => action(provider, event.currentTarget),
    });
    return el("tr", { dataset: { providerId: provider.id } },
      el("td", { text: provider.name }),
      el("td", { class: "secret", text: provider.id }),
      el("td", { text: t(PROVIDER_STATUS[provider.status] || provider.status) }),
      el("td", { text: provider.categories.map((code) => categoryName(code, state.categories)).join(", ") }),
      el("td", {}, el("div", { class: "actions" },
        provider.status !== "approved" ? button("admin.providers.approve", (p) => setStatus(p, "approve")) : null,
        provider.status === "approved" ? button("admin.providers.suspend", (p) => setStatus(p, "suspend"), "danger") : null,
        button("admin.providers.credentials", issueCredentials))));
  }));
  labelCells($("#provider-table"));
  show($("#provider-table"), state.providers.size > 0);
}

async function setStatus(provider, action) {
  try {
    const updated = await request("POST", `/v1/providers/${encodeURIComponent(provider.id)}/${action}`, { token: tokenFor("admin") });
    rememberProvider(updated);
    say($("#provider-message"), t(`admin.providers.did_${action}`, { name: updated.name }), "ok");
  } catch (error) {
    failed($("#provider-message"), error);
  }
}

async function issueCredentials(provider) {
  const box = $("#credentials");
  try {
    const credentials = await request("POST", `/v1/providers/${encodeURIComponent(provider.id)}/credentials`, { token: tokenFor("admin") });
    box.replaceChildren(
      el("p", { text: t("admin.providers.credentials_for", { name: provider.name }) }),
      el("dl", { class: "reference" },
        el("dt", { text: t("provider.signin.client_id") }),
        el("dd", { class: "secret", id: "issued-client-id", text: credentials.client_id }),
        el("dt", { text: t("provider.signin.client_secret") }),
        el("dd", { class: "secret", id: "issued-client-secret", text: credentials.client_secret })),
      el("p", { text: t("admin.providers.shown_once") }));
    show(box);
    box.setAttribute("tabindex", "-1");
    box.focus();
  } catch (error) {
    failed($("#provider-message"), error);
  }
}

async function viewProvider(form) {
  try {
    const provider = await request("GET", `/v1/providers/${encodeURIComponent(form.get("id").trim())}`, { token: tokenFor("admin") });
    rememberProvider(provider);
  } catch (error) {
    failed($("#provider-message"), error);
  }
}

// The credit run.

async function creditRun(form) {
  const box = $("#credit-result");
  const month = form.get("month");
  try {
    const run = await idempotentPost("/v1/credit-runs", { token: tokenFor("admin", "finance"), body: { month } }, creditKeys.keyFor({ month }));
    creditKeys.answered();
    box.className = "outcome outcome-box-ok";
    box.replaceChildren(
      el("p", { text: t(run.credited_now ? "admin.credit.done" : "admin.credit.already", { month: run.month }) }),
      el("dl", { class: "reference" },
        el("dt", { text: t("admin.credit.lines_now") }), el("dd", { id: "credit-now", text: String(run.credited_now) }),
        el("dt", { text: t("admin.credit.lines_all") }), el("dd", { id: "credit-lines", text: String(run.credited) }),
        el("dt", { text: t("admin.credit.amount_all") }), el("dd", { id: "credit-amount", text: euros(run.amount) }),
        el("dt", { text: t("admin.credit.expired_now") }), el("dd", { text: String(run.expired_now) })));
  } catch (error) {
    if (!(error instanceof ConnectionLost)) creditKeys.answered();
    box.className = "outcome outcome-box-error";
    box.replaceChildren(el("p", { text: problemText(error) }));
  }
  show(box);
}

// Settlements.

const SETTLEMENT_STATUS = { open: "admin.settlements.open", invoiced: "admin.settlements.invoiced", paid: "admin.settlements.paid" };

async function loadSettlements() {
  let page;
  try {
    page = await request("GET", "/v1/settlements?limit=50", { token: tokenFor("finance", "admin") });
  } catch (error) {
    failed($("#settlements-message"), error);
    return;
  }
  state.settlements = page.data;
  renderSettlements();
  // Name the providers this session has not met (the organizer may read any provider).
  if (!has("admin")) return;
  const unknown = [...new Set(page.data.map((batch) => batch.provider_id))].filter((id) => !state.providerNames.has(id) && !state.providers.has(id));
  if (!unknown.length) return;
  await Promise.all(unknown.map(async (id) => {
    try {
      const provider = await request("GET", `/v1/providers/${encodeURIComponent(id)}`, { token: tokenFor("admin") });
      state.providerNames.set(id, provider.name);
    } catch { /* the id stands in */ }
  }));
  renderSettlements();
}

function renderSettlements() {
  $("#settlement-table tbody").replaceChildren(...state.settlements.map((batch) => {
    const provider = state.providers.get(batch.provider_id);
    const name = provider ? provider.name : state.providerNames.get(batch.provider_id) || batch.provider_id;
    return el("tr", { dataset: { settlementId: batch.id } },
      el("td", { text: localDate(batch.created_at, language()) }),
      el("td", { text: name }),
      el("td", { class: "bank-reference", text: batch.reference_printed }),
      el("td", { class: "number", text: euros(batch.amount) }),
      el("td", { text: t(SETTLEMENT_STATUS[batch.status] || batch.status) }),
      el("td", {}, has("finance") && batch.status !== "paid" ? el("button", {
        type: "button", class: "secondary", text: t("admin.settlements.mark_paid"),
        "aria-label": `${t("admin.settlements.mark_paid")}: ${batch.reference_printed}`,
        onclick: (event) => markPaid(batch, event.currentTarget),
      }) : null));
  }));
  labelCells($("#settlement-table"));
  show($("#settlement-table"), state.settlements.length > 0);
  show($("#settlements-empty"), state.settlements.length === 0);
}

// admin-finance.js (payments, bank statements) and this page's sections tell each other of changes.
function settlementsChanged() {
  document.dispatchEvent(new CustomEvent("wallet:settlements-changed", { detail: { from: "admin" } }));
}
document.addEventListener("wallet:settlements-changed", (event) => { if (event.detail?.from !== "admin") loadSettlements(); });

async function markPaid(batch, button) {
  button.disabled = true;
  try {
    await idempotentPost(`/v1/settlements/${encodeURIComponent(batch.id)}/paid`, { token: tokenFor("finance") }, newKey());
    say($("#settlements-message"), t("admin.settlements.marked", { reference: batch.reference_printed }), "ok");
    settlementsChanged();
  } catch (error) {
    failed($("#settlements-message"), error);
  }
  await loadSettlements();
}

// The usage report (shown only where the server has the route).

async function showUsage(form) {
  const box = $("#usage-result");
  const query = new URLSearchParams({ month: form.get("month"), limit: "200" });
  if (form.get("low_use")) query.set("low_use", "true");
  let report;
  try {
    report = await request("GET", `${USAGE_PATH}?${query}`, { token: tokenFor("admin", "finance") });
  } catch (error) {
    box.replaceChildren(el("p", { class: "message message-error", role: "alert", text: problemText(error) }));
    return;
  }
  const totals = report.totals;
  const figure = (key, cents) => [el("dt", { text: t(key) }), el("dd", { text: euros(cents) })];
  const clientRows = report.data.map((client) => el("tr", { dataset: { clientId: client.client_id } },
    el("td", {}, client.name, client.low_use ? el("strong", { class: "flag", text: ` ${t("admin.usage.low_use")}` }) : null),
    el("td", { class: "number", text: euros(client.monthly_amount) }),
    el("td", { class: "number", text: euros(client.used) }),
    el("td", { class: "number", text: client.used_percent === null ? "–" : `${client.used_percent} %` }),
    el("td", { class: "number", text: euros(client.held) }),
    el("td", { class: "number", text: euros(client.left) })));
  const providerRows = report.providers.map((provider) => el("tr", {},
    el("td", { text: provider.provider_name }),
    el("td", { class: "number", text: euros(provider.captured) }),
    el("td", { class: "number", text: euros(provider.refunded) }),
    el("td", { class: "number", text: euros(provider.charged) })));
  const table = (id, caption, headings, rows) => el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    el("table", { id, class: "stack" },
      el("caption", { text: caption }),
      el("thead", {}, el("tr", {}, headings.map(([key, number]) => el("th", { scope: "col", class: number ? "number" : null, text: t(key) })))),
      el("tbody", {}, rows)));
  fill(box,
    el("h3", { text: t(report.complete ? "admin.usage.for" : "admin.usage.so_far", { month: report.month }) }),
    el("dl", { class: "figures" },
      figure("admin.usage.monthly", totals.monthly_amount),
      figure("admin.usage.credited", totals.credited),
      figure("admin.usage.used", totals.used),
      figure("admin.usage.held", totals.held),
      figure("admin.usage.left", totals.left)),
    el("p", { text: t("admin.usage.clients", { clients: totals.clients, low: totals.low_use_clients }) }),
    report.low_use_rule.evaluated ? null : el("p", { class: "help", text: t("admin.usage.rule_later", { day: report.low_use_rule.from_day }) }),
    clientRows.length ? table("usage-clients", t("admin.usage.clients_caption", { month: report.month }), [
      ["admin.clients.name"], ["admin.usage.monthly", true], ["admin.usage.used", true], ["admin.usage.used_percent", true],
      ["admin.usage.held", true], ["admin.usage.left", true]], clientRows) : el("p", { text: t("admin.usage.empty") }),
    report.next_cursor ? el("p", { class: "help", text: t("admin.usage.more") }) : null,
    providerRows.length ? table("usage-providers", t("admin.usage.providers_caption", { month: report.month }), [
      ["common.provider"], ["admin.usage.captured", true], ["admin.usage.refunded", true], ["admin.usage.charged", true]], providerRows) : null);
  for (const id of ["#usage-clients", "#usage-providers"]) if (box.querySelector(id)) labelCells($(id));
  document.dispatchEvent(new CustomEvent("wallet:usage-report", { detail: report }));  // admin-usage-chart.js draws it
}

// Exports: fetched with the finance token, then handed to the browser as a download.

async function download(form) {
  const message = $("#export-message");
  const query = new URLSearchParams({ format: form.get("format") });
  if (form.get("from")) query.set("from", form.get("from"));
  if (form.get("to")) query.set("to", form.get("to"));
  let response;
  try {
    const token = tokenFor("finance");
    response = await fetch(`/v1/exports/${form.get("kind")}?${query}`, {
      headers: token ? { Authorization: `Bearer ${token}` } : {}, cache: "no-store", credentials: token ? "omit" : "same-origin",
    });
  } catch (error) {
    failed(message, new ConnectionLost(String(error)));
    return;
  }
  if (!response.ok) {
    failed(message, new ApiError(response.status, await response.json().catch(() => ({}))));
    return;
  }
  const blob = await response.blob();
  const disposition = response.headers.get("Content-Disposition") || "";
  const name = (/filename="([^"]+)"/.exec(disposition) || [])[1] || `${form.get("kind")}.${form.get("format") === "jsonl" ? "jsonl" : "csv"}`;
  const url = URL.createObjectURL(blob);
  const link = el("a", { href: url, download: name, text: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  say(message, t("admin.exports.done", { name }), "ok");
}

// Reconciliation.

const OUTCOME_KEYS = {
  matched: "admin.reconcile.matched", amount_mismatch: "admin.reconcile.amount_mismatch",
  unknown_reference: "admin.reconcile.unknown_reference", business_id_mismatch: "admin.reconcile.business_id_mismatch",
  duplicate: "admin.reconcile.duplicate",
};

async function reconcile(form) {
  const box = $("#reconcile-result");
  const file = form.get("file");
  if (!(file instanceof File) || !file.size) {
    box.replaceChildren(el("p", { class: "message message-error", role: "alert", text: t("admin.reconcile.need_file") }));
    return;
  }
  const csv = /\.csv$/i.test(file.name) || file.type === "text/csv";
  const raw = await file.arrayBuffer();
  let result;
  try {
    result = await idempotentPost("/v1/reconciliations", { token: tokenFor("finance"), raw, contentType: csv ? "text/csv" : "application/xml" }, newKey());
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return signOut("common.session_expired");
    box.replaceChildren(el("p", { class: "message message-error", role: "alert", text: problemText(error) }));
    return;
  }
  const summary = Object.entries(result.summary).filter(([, count]) => count > 0)
    .map(([outcome, count]) => `${t(OUTCOME_KEYS[outcome] || outcome)}: ${count}`).join(", ");
  fill(box,
    el("p", { class: "message message-ok", text: t("admin.reconcile.done", { file: file.name, count: result.invoices.length, summary }) }),
    el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": t("admin.reconcile.caption", { file: file.name }) }, el("table", { id: "reconcile-table", class: "stack" },
      el("caption", { text: t("admin.reconcile.caption", { file: file.name }) }),
      el("thead", {}, el("tr", {},
        el("th", { scope: "col", text: "#" }),
        el("th", { scope: "col", text: t("admin.reconcile.invoice") }),
        el("th", { scope: "col", text: t("admin.settlements.reference") }),
        el("th", { scope: "col", text: t("admin.providers.business_id") }),
        el("th", { scope: "col", class: "number", text: t("common.amount") }),
        el("th", { scope: "col", text: t("admin.reconcile.outcome") }))),
      el("tbody", {}, result.invoices.map((invoice) => el("tr", { dataset: { outcome: invoice.outcome } },
        el("td", { text: String(invoice.position) }),
        el("td", {}, invoice.invoice_number ?? "–",
          invoice.sender ? el("span", { class: "help", dataset: { role: "sender" }, text: ` ${t("admin.reconcile.sender", { sender: invoice.sender })}` }) : null),
        el("td", { class: "bank-reference", text: invoice.reference ?? "–" }),
        el("td", { text: invoice.business_id ?? "–" }),
        el("td", { class: "number" }, typeof invoice.amount === "number" ? euros(invoice.amount) : "–",
          typeof invoice.invoice_total === "number" && invoice.invoice_total !== invoice.amount
            ? el("span", { class: "help", dataset: { role: "total" }, text: ` ${t("admin.reconcile.total", { amount: euros(invoice.invoice_total) })}` }) : null),
        el("td", {}, el("strong", { text: t(OUTCOME_KEYS[invoice.outcome] || invoice.outcome) }),
          invoice.outcome === "amount_mismatch" && typeof invoice.settlement_amount === "number"
            ? ` ${t("admin.reconcile.expected", { amount: euros(invoice.settlement_amount) })}` : "",
          invoice.detail && invoice.outcome !== "matched" ? el("span", { class: "help", text: ` ${invoice.detail}` }) : null)))))));
  labelCells($("#reconcile-table"));
  await loadSettlements();
  settlementsChanged();
}

setUp(() => {
  rerenderDesk();
  renderClients();
  renderProviders();
  renderSettlements();
  if (has("admin") || has("finance")) $("#roles").textContent = ["admin", "finance"].filter(has).map((role) => t(`admin.role.${role}`)).join(", ");
});
onSubmit($("#signin-form"), signIn);
onSubmit($("#category-form"), createCategory);
onSubmit($("#client-form"), createClient);
onSubmit($("#client-view-form"), viewClient);
onSubmit($("#budget-form"), createBudget);
onSubmit($("#rep-form"), createMandate);
onSubmit($("#provider-form"), createProvider);
onSubmit($("#provider-view-form"), viewProvider);
onSubmit($("#credit-form"), creditRun);
onSubmit($("#usage-form"), showUsage);
onSubmit($("#export-form"), download);
onSubmit($("#reconcile-form"), reconcile);
$("#budget-add-line").addEventListener("click", () => addBudgetLine()?.querySelector("select").focus());
$("#settlements-refresh").addEventListener("click", loadSettlements);
$("#signout").addEventListener("click", async () => {
  if (currentPageSession()) await endPageSession(); // then on to the identity provider's sign-out
  signOut();
  $("#admin-token").focus();
});

// The staff sign-in through the organizer's identity provider; the token form only where the
// development setting WALLET_ADMIN_TOKEN_FORM turns it on.
async function start() {
  setUpDesk(tokenFor);
  const options = await signInOptions();
  show($("#staff-signin"), options.staff_signin);
  show($("#signin-form"), options.admin_token_form);
  show($("#signin-intro"), options.admin_token_form);
  await resumePageSession("staff");
  await open();
}
start().catch((error) => failed($("#flash"), error));
