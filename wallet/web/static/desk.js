// The organizer's desk on /admin: clients and providers searched by name, phone, national id or
// business id (GET /v1/clients?query=, GET /v1/providers?query=&status=), a page at a time, each
// opened in the page's own client or provider view.

import { request } from "./api.js";
import { $, el, fill, labelCells, localDate, onSubmit, say, show } from "./dom.js";
import { apply, language, problemText, t } from "./i18n.js";

const PAGE_SIZE = 20;
const state = { kind: "clients", query: "", status: "", cursor: null, rows: [], tokenFor: null };

function path() {
  const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (state.query) query.set("query", state.query);
  if (state.kind === "providers" && state.status) query.set("status", state.status);
  if (state.cursor) query.set("cursor", state.cursor);
  return `/v1/${state.kind}?${query}`;
}

// Open a found row in the page's own view of it (the organizer's; finance has no such view).
function open(item) {
  const [form, input] = state.kind === "clients" ? ["#client-view-form", "#client-view-id"] : ["#provider-view-form", "#provider-view-id"];
  $(input).value = item.id;
  $(form).requestSubmit();
  $(input).scrollIntoView({ block: "center" });
}

function render() {
  const box = $("#desk-results");
  const clients = state.kind === "clients";
  const canOpen = !$(clients ? "#clients" : "#providers").hidden;
  if (!state.rows.length) {
    fill(box, el("p", { text: t("desk.none") }));
    return;
  }
  const heads = [t("desk.name"), clients ? t("desk.phone") : t("desk.business_id"), clients ? t("desk.created") : t("desk.status")];
  fill(box, el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": t("desk.caption") }, el("table", { id: "desk-table", class: "stack" },
    el("caption", { text: t("desk.caption") }),
    el("thead", {}, el("tr", {}, ...heads.map((text) => el("th", { scope: "col", text })), canOpen ? el("th", { scope: "col", text: t("desk.open") }) : null)),
    el("tbody", {}, ...state.rows.map((item) => el("tr", {},
      el("td", { text: item.name }),
      el("td", { text: clients ? item.phone : item.business_id }),
      el("td", { text: clients ? localDate(item.created_at, language()) : t(`desk.status.${item.status}`) }),
      canOpen ? el("td", {}, el("button", { type: "button", class: "secondary", text: t("desk.open"), "aria-label": t("desk.open_named", { name: item.name }), onclick: () => open(item) })) : null,
    ))),
  )));
  labelCells($("#desk-table"));
}

async function load(fresh) {
  const message = $("#desk-message");
  if (fresh) {
    state.cursor = null;
    state.rows = [];
  }
  let page;
  try {
    page = await request("GET", path(), { token: state.tokenFor("admin", "finance") });
  } catch (error) {
    say(message, problemText(error), "error");
    return;
  }
  say(message, "");
  state.rows = [...state.rows, ...page.data];
  state.cursor = page.next_cursor;
  show($("#desk-more"), Boolean(state.cursor));
  render();
}

// `tokenFor(...roles)`: admin.js's, the token (or null for the session cookie) of the first role held.
export function setUpDesk(tokenFor) {
  state.tokenFor = tokenFor;
  apply($("#desk"));
  onSubmit($("#desk-form"), async (form) => {
    state.kind = form.get("kind") === "providers" ? "providers" : "clients";
    state.query = String(form.get("query") || "").trim();
    state.status = String(form.get("status") || "");
    await load(true);
  });
  $("#desk-kind").addEventListener("change", () => show($("#desk-status-field"), $("#desk-kind").value === "providers"));
  $("#desk-more").addEventListener("click", () => load(false));
}

export function rerenderDesk() {
  if (state.rows.length) render();
}
