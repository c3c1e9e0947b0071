// The usage report on /admin as a chart: for all clients together and for each client shown, the
// month's money used, held and left, drawn as SVG by chart.js. The report's own tables, which
// admin.js shows just below, hold the same figures for screen readers; the chart is one image.

import { el } from "./dom.js";
import { addStrings, language, onLanguageChange, t } from "./i18n.js";
import { legend, stackedBars } from "./chart.js";
import { formatEuros } from "./money.js";

addStrings({
  "usage_chart.title": ["Kaavio: käytetty, varattu ja jäljellä oleva raha, {month}. Luvut ovat taulukoissa kaavion alla.", "Diagram: använt, reserverat och kvar, {month}. Siffrorna finns i tabellerna under diagrammet.", "Chart: used, held and left, {month}. The figures are in the tables below the chart."],
  "usage_chart.all": ["Kaikki asiakkaat", "Alla klienter", "All clients"],
  "usage_chart.row": ["{name}: käytetty {used} / {monthly}", "{name}: använt {used} / {monthly}", "{name}: used {used} / {monthly}"],
  "usage_chart.shown": ["Kaaviossa {count} ensimmäistä asiakasta.", "Diagrammet visar de {count} första klienterna.", "The chart shows the first {count} clients."],
});

const CLIENTS_MAX = 30;  // rows in the picture; the table below lists every client on the page
let last = null;

function draw(report) {
  const box = document.getElementById("usage-result");
  if (!box || !report) return;
  box.querySelector(".usage-chart")?.remove();
  const euros = (cents) => formatEuros(cents, language());
  const row = (key, name, figures) => ({
    key,
    label: t("usage_chart.row", { name, used: euros(figures.used), monthly: euros(figures.monthly_amount) }),
    parts: [
      { value: figures.used, className: "chart-spent", name: `${t("admin.usage.used")} ${euros(figures.used)}` },
      { value: figures.held, className: "chart-held", name: `${t("admin.usage.held")} ${euros(figures.held)}` },
      { value: figures.left, className: "chart-left", name: `${t("admin.usage.left")} ${euros(figures.left)}` },
    ],
  });
  const clients = report.data.slice(0, CLIENTS_MAX);
  // The totals on a scale of their own: a client's bar beside the sum of all would be a sliver.
  const totals = stackedBars({ title: t("usage_chart.title", { month: report.month }), rows: [row("totals", t("usage_chart.all"), report.totals)] });
  const each = clients.length ? stackedBars({
    title: t("usage_chart.title", { month: report.month }),
    rows: clients.map((client) => row(client.client_id, client.name, client)),
  }) : null;
  const figure = el("figure", { class: "usage-chart", id: "usage-chart" },
    totals, each,
    el("figcaption", {},
      legend([["chart-spent", t("admin.usage.used")], ["chart-held", t("admin.usage.held")], ["chart-left", t("admin.usage.left")]], el),
      report.data.length > CLIENTS_MAX ? el("p", { class: "help", text: t("usage_chart.shown", { count: CLIENTS_MAX }) }) : null));
  const table = box.querySelector(".table-wrap");
  if (table) box.insertBefore(figure, table);
  else box.append(figure);
}

document.addEventListener("wallet:usage-report", (event) => { last = event.detail; draw(last); });
onLanguageChange(() => draw(last));
