// Charts drawn by the page itself as SVG (no outside service, no library, nothing inline that the
// Content-Security-Policy refuses: shapes take classes from wallet.css). A chart is a picture of a
// table that is on the page too: screen readers read the table; the SVG is one named image.

const SVG = "http://www.w3.org/2000/svg";

export function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") element.textContent = value;
    else if (name === "dataset") for (const [key, data] of Object.entries(value)) element.setAttribute(`data-${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, data);
    else element.setAttribute(name, String(value));
  }
  for (const child of children.flat()) if (child) element.append(child);
  return element;
}

// Horizontal stacked bars, one a row: each row { label, parts: [{ value, className, name }],
// marker?: fraction 0..1 (a line across the bar, e.g. how far the month has gone) }. Values are
// integers (cents); widths are fractions of `scale` (the largest row total by default).
export function stackedBars({ rows, title, width = 640, barHeight = 28, gap = 30, labelHeight = 20 }) {
  const scale = Math.max(1, ...rows.map((row) => row.parts.reduce((sum, part) => sum + Math.max(0, part.value), 0)));
  const rowHeight = labelHeight + barHeight + gap;
  const height = rows.length * rowHeight + 8;
  const picture = svg("svg", {
    class: "chart", viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": title, focusable: "false",
  }, svg("title", { text: title }));
  rows.forEach((row, index) => {
    const top = index * rowHeight;
    const group = svg("g", { class: "chart-row", dataset: { row: row.key ?? String(index) } },
      svg("text", { class: "chart-label", x: 0, y: top + labelHeight - 5, text: row.label }));
    let x = 0;
    group.append(svg("rect", { class: "chart-track", x: 0, y: top + labelHeight, width, height: barHeight }));
    for (const part of row.parts) {
      const share = Math.max(0, part.value) / scale;
      const partWidth = share * width;
      if (partWidth > 0) {
        group.append(svg("rect", {
          class: `chart-part ${part.className}`, x: x.toFixed(2), y: top + labelHeight, width: partWidth.toFixed(2), height: barHeight,
          dataset: { part: part.className, value: String(part.value) },
        }, svg("title", { text: part.name })));
      }
      x += partWidth;
    }
    if (typeof row.marker === "number") {
      const at = Math.min(1, Math.max(0, row.marker)) * (row.markerScale ?? 1) * width;
      group.append(svg("line", { class: "chart-marker", x1: at.toFixed(2), x2: at.toFixed(2), y1: top + labelHeight - 4, y2: top + labelHeight + barHeight + 4 }));
    }
    picture.append(group);
  });
  return picture;
}

// The legend: a swatch and a name for each part, as ordinary text.
export function legend(items, el) {
  return el("ul", { class: "chart-legend" }, items.map(([className, name]) => el("li", {},
    svg("svg", { class: "chart-swatch", viewBox: "0 0 16 16", width: "16", height: "16", "aria-hidden": "true", focusable: "false" },
      svg("rect", { class: `chart-part ${className}`, x: 0, y: 0, width: 16, height: 16 })),
    ` ${name}`)));
}
