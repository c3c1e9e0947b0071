// The month at a glance on the client's page: for each budget line, what is spent, held and left
// of this month's money, against how much of the month is gone (a line across each bar) and how
// many days are left; drawn as SVG by chart.js, with the same figures in a table for screen
// readers. Below it, money staged for months ahead (`upcoming`), not spendable before its month.
// Figures: this month's statement (GET /v1/me/statements/{month}) and the wallet client.js shows.

import { signedInAs, tokenFor } from "./access.js";
import { request } from "./api.js";
import { $, el, fill, labelCells, localDate, locale } from "./dom.js";
import { addStrings, categoryName, language, onLanguageChange, problemText, t } from "./i18n.js";
import { legend, stackedBars } from "./chart.js";
import { formatEuros } from "./money.js";

addStrings({
  "month.heading": ["Kuukausi yhdellä silmäyksellä", "Månaden i en blick", "The month at a glance"],
  "month.chart": ["Kaavio: käytetty, varattu ja jäljellä oleva raha palveluittain, {month}. Luvut ovat taulukossa kaavion alla.", "Diagram: använt, reserverat och kvar per tjänst, {month}. Siffrorna finns i tabellen under diagrammet.", "Chart: spent, held and left per service, {month}. The figures are in the table below the chart."],
  "month.caption": ["Raha palveluittain, {month}: {days} päivää jäljellä", "Pengar per tjänst, {month}: {days} dagar kvar", "Money per service, {month}: {days} days left"],
  "month.service": ["Palvelu", "Tjänst", "Service"],
  "month.money": ["Kuukauden raha", "Månadens pengar", "This month's money"],
  "month.spent": ["Käytetty", "Använt", "Spent"],
  "month.held": ["Varattu", "Reserverat", "Held"],
  "month.left": ["Jäljellä", "Kvar", "Left"],
  "month.days_left": ["Päiviä jäljellä", "Dagar kvar", "Days left"],
  "month.per_day": ["Jäljellä päivää kohden", "Kvar per dag", "Left per day"],
  "month.gone": ["Pystyviiva: kuukaudesta kulunut {percent} %", "Lodrät linje: {percent} % av månaden har gått", "Upright line: {percent} % of the month gone"],
  "month.upcoming": ["Tulossa", "På väg", "Coming"],
  "month.upcoming_intro": ["Seuraavien kuukausien raha on jo myönnetty, mutta sitä voi käyttää vasta kuukauden alusta.", "Pengarna för kommande månader är redan beviljade men kan användas först från månadens början.", "Money for the months ahead is granted already, but can be spent only from the start of its month."],
  "month.upcoming_item": ["{month}: {amount}, käytettävissä {day} alkaen", "{month}: {amount}, kan användas från {day}", "{month}: {amount}, to spend from {day}"],
});

const DAY_MS = 86_400_000;
const REFRESH_MS = 300;
const state = { wallet: null, statement: null, categories: null, timer: 0 };
const euros = (cents) => formatEuros(cents, language());

const token = () => tokenFor("client", "representative");

// A representative sees the client chosen in client.js's switcher.
function mePath(rest) {
  const subject = document.getElementById("subject");
  return subject && subject.value ? `/v1/me${rest}?client_id=${encodeURIComponent(subject.value)}` : `/v1/me${rest}`;
}

function thisMonth() {
  const now = new Date();
  return `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, "0")}`;
}

const monthName = (month) => new Date(`${month}-15T12:00:00Z`).toLocaleDateString(locale(language()), { month: "long", year: "numeric" });

async function refresh() {
  try {
    if (!state.categories) {
      const categories = await request("GET", "/v1/categories", { token: token() });
      state.categories = new Map(categories.data.map((category) => [category.code, category.name]));
    }
    state.statement = await request("GET", mePath(`/statements/${thisMonth()}`), { token: token() });
  } catch (error) {
    fill($("#month-chart-body"), el("p", { class: "message message-error", text: problemText(error) }));
    return;
  }
  render();
}

// Each line's figures: this month's money (opening, credits, less what expired), spent (charges
// less refunds), held and left (the wallet now), and the days of the month left.
export function figures(statement, wallet, now = Date.now()) {
  const start = Date.parse(statement.period_start);
  const end = Date.parse(statement.period_end);
  const asOf = Math.min(Date.parse(statement.as_of) || now, end);
  const days = Math.round((end - start) / DAY_MS);
  const gone = Math.min(days, Math.floor((asOf - start) / DAY_MS));
  const daysLeft = days - gone;
  const lines = statement.lines.map((line) => {
    const now_ = wallet.lines.find((candidate) => candidate.category === line.category) || { held: 0, available: line.closing_balance };
    const left = now_.available;
    return {
      category: line.category,
      money: line.opening_balance + line.credits - line.expiry,
      spent: line.charges - line.refunds,
      held: now_.held,
      left,
      daysLeft,
      perDay: daysLeft > 0 ? Math.floor(Math.max(0, left) / daysLeft) : left,
    };
  });
  return { lines, days, gone, daysLeft };
}

function render() {
  const body = $("#month-chart-body");
  const { wallet, statement } = state;
  if (!wallet || !statement) return;
  const month = monthName(statement.month);
  const seen = figures(statement, wallet);
  const name = (code) => categoryName(code, state.categories);
  const parts = [["chart-spent", t("month.spent")], ["chart-held", t("month.held")], ["chart-left", t("month.left")]];
  const chart = stackedBars({
    width: 360,  // phone first: at a phone's width the labels stay readable
    title: t("month.chart", { month }),
    rows: seen.lines.map((line) => ({
      key: line.category,
      label: `${name(line.category)}: ${t("month.left").toLowerCase()} ${euros(line.left)}`,
      parts: [
        { value: line.spent, className: "chart-spent", name: `${t("month.spent")} ${euros(line.spent)}` },
        { value: line.held, className: "chart-held", name: `${t("month.held")} ${euros(line.held)}` },
        { value: line.left, className: "chart-left", name: `${t("month.left")} ${euros(line.left)}` },
      ],
      marker: seen.days ? seen.gone / seen.days : 0,
      // The marker measures this line's own money, whatever the widest bar is.
      markerScale: line.money > 0 ? line.money / Math.max(1, ...seen.lines.map((other) => Math.max(0, other.spent) + other.held + Math.max(0, other.left))) : 0,
    })),
  });
  const headings = [["month.service"], ["month.money", true], ["month.spent", true], ["month.held", true], ["month.left", true], ["month.days_left", true], ["month.per_day", true]];
  const rows = seen.lines.map((line) => el("tr", { dataset: { category: line.category } },
    el("th", { scope: "row", text: name(line.category) }),
    el("td", { class: "number", dataset: { role: "money" }, text: euros(line.money) }),
    el("td", { class: "number", dataset: { role: "spent" }, text: euros(line.spent) }),
    el("td", { class: "number", dataset: { role: "held" }, text: euros(line.held) }),
    el("td", { class: "number", dataset: { role: "left" }, text: euros(line.left) }),
    el("td", { class: "number", dataset: { role: "days-left" }, text: String(line.daysLeft) }),
    el("td", { class: "number", dataset: { role: "per-day" }, text: euros(line.perDay) })));
  const caption = t("month.caption", { month, days: seen.daysLeft });
  const upcoming = wallet.upcoming || [];
  fill(body,
    seen.lines.length ? [
      el("figure", { class: "month-chart" }, chart,
        el("figcaption", {}, legend(parts, el), el("p", { class: "help", text: t("month.gone", { percent: seen.days ? Math.round((100 * seen.gone) / seen.days) : 0 }) }))),
      el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
        el("table", { id: "month-table", class: "stack" },
          el("caption", { text: caption }),
          el("thead", {}, el("tr", {}, headings.map(([key, number]) => el("th", { scope: "col", class: number ? "number" : null, text: t(key) })))),
          el("tbody", {}, rows))),
    ] : null,
    upcoming.length ? [
      el("h3", { text: t("month.upcoming") }),
      el("p", { class: "help", text: t("month.upcoming_intro") }),
      el("ul", { id: "upcoming-list" }, upcoming.map((item) => el("li", { dataset: { month: item.month } }, t("month.upcoming_item", {
        month: monthName(item.month), amount: euros(item.amount), day: localDate(item.available_from, language()),
      })))),
    ] : null);
  if (seen.lines.length) labelCells($("#month-table"));
}

function start() {
  if (!document.getElementById("month-chart-body")) return;
  // client.js tells each time it shows the wallet (at sign-in, on a switch, on every live change).
  document.addEventListener("wallet:rendered", (event) => {
    state.wallet = event.detail;
    render();
    clearTimeout(state.timer);
    state.timer = setTimeout(refresh, REFRESH_MS);
  });
  onLanguageChange(render);
}

start();
