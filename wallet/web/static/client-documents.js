// The client's documents: the decisions on their budgets, each the PDF as it was issued, and the
// monthly statement as a PDF. Its own strings and its own section, so the rest of the page stays
// as it is; client.js tells it whose wallet is shown (the "wallet:subject" event).

import { ApiError, ConnectionLost, Session } from "./api.js";
import { $, el, localDate, say, show } from "./dom.js";
import { LANGUAGES, language } from "./i18n.js";

// Each text is [fi, sv, en], as in strings.js.
const STRINGS = {
  heading: ["Päätökset", "Beslut", "Decisions"],
  none: ["Sinulla ei ole vielä päätöksiä.", "Du har inga beslut ännu.", "You have no decisions yet."],
  grant: ["Budjetti {start} alkaen", "Budget från {start}", "Budget from {start}"],
  change: ["Muutos {start} alkaen", "Ändring från {start}", "Change from {start}"],
  decided: ["Päätös {number}, {date}", "Beslut {number}, {date}", "Decision {number}, {date}"],
  download: ["Lataa päätös (PDF)", "Ladda ner beslutet (PDF)", "Download the decision (PDF)"],
  statement: ["Lataa ote (PDF)", "Ladda ner utdraget (PDF)", "Download the statement (PDF)"],
  failed: ["Lataus ei onnistunut. Yritä uudelleen.", "Nedladdningen misslyckades. Försök igen.", "The download failed. Please try again."],
  connection: ["Yhteys palvelimeen katkesi. Yritä uudelleen.", "Anslutningen till servern bröts. Försök igen.", "The connection to the server was lost. Please try again."],
  loading: ["Ladataan…", "Laddar…", "Loading…"],
};
const session = new Session("client");
const state = { subject: null, decisions: [] };

function t(key, params = {}) {
  let text = STRINGS[key][LANGUAGES.indexOf(language())] ?? STRINGS[key][0];
  for (const [name, value] of Object.entries(params)) text = text.replaceAll(`{${name}}`, String(value));
  return text;
}

// The documents are in Finnish or Swedish: an English page gets the Finnish ones.
function documentLanguage() {
  return language() === "sv" ? "sv" : "fi";
}

function forSubject(path) {
  if (!state.subject || !state.subject.represented) return path;
  return `${path}${path.includes("?") ? "&" : "?"}client_id=${encodeURIComponent(state.subject.clientId)}`;
}

async function fetchAs(path, accept) {
  const token = session.token;
  if (!token) throw new ApiError(401, { code: "unauthorized" });
  let response;
  try {
    response = await fetch(path, { headers: { Authorization: `Bearer ${token}`, Accept: accept }, cache: "no-store", credentials: "omit" });
  } catch (error) {
    throw new ConnectionLost(String(error));
  }
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => ({})));
  return response;
}

// Save a PDF the API answered: a download the browser names, never a page of its own.
async function download(path, fileName, button) {
  const region = $("#documents-message");
  say(region, "");
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    const blob = await (await fetchAs(path, "application/pdf")).blob();
    const url = URL.createObjectURL(blob);
    const link = el("a", { href: url, download: fileName, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (error) {
    say(region, t(error instanceof ConnectionLost ? "connection" : "failed"), "error");
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

function monthName(month) {
  return `${Number(month.slice(5, 7))}/${month.slice(0, 4)}`;
}

function render() {
  $("#decisions-heading").textContent = t("heading");
  const list = $("#decisions-list");
  list.replaceChildren(...state.decisions.map((decision) => el("li", { class: "decision" },
    el("p", { class: "decision-title", text: t(decision.kind === "grant" ? "grant" : "change", { start: monthName(decision.from_month) }) }),
    el("p", { class: "help", text: t("decided", { number: decision.number, date: localDate(decision.created_at, language()) }) }),
    el("button", {
      type: "button",
      class: "secondary",
      text: t("download"),
      "aria-label": `${t("download")}: ${decision.number}`,
      onclick: (event) => download(forSubject(`/v1/me/decisions/${encodeURIComponent(decision.id)}`), `${decision.number}.pdf`, event.currentTarget),
    }))));
  show($("#decisions-none"), state.decisions.length === 0);
  $("#decisions-none").textContent = t("none");
  const button = $("#statement-pdf");
  button.textContent = t("statement");
}

async function load() {
  const subject = state.subject;
  try {
    const answer = await (await fetchAs(forSubject("/v1/me/decisions"), "application/json")).json();
    if (subject !== state.subject) return;  // the wallet shown changed meanwhile
    state.decisions = answer.data;
    render();
  } catch (error) {
    say($("#documents-message"), t(error instanceof ConnectionLost ? "connection" : "failed"), "error");
  }
}

function setUp() {
  const statementForm = $("#statement-form");
  const button = el("button", { type: "button", id: "statement-pdf", class: "secondary", text: t("statement") });
  statementForm.append(button);
  button.addEventListener("click", () => {
    const month = $("#statement-month").value;
    if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(month)) return;
    download(forSubject(`/v1/me/statements/${month}?language=${documentLanguage()}`), `statement-${month}.pdf`, button);
  });
  document.addEventListener("wallet:subject", (event) => {
    state.subject = event.detail;
    state.decisions = [];
    render();
    load();
  });
  // The page's language switch sets <html lang>: follow it.
  new MutationObserver(render).observe(document.documentElement, { attributes: true, attributeFilter: ["lang"] });
  render();
}

setUp();
