// Small DOM helpers: elements are built with textContent only (never innerHTML), so text from the
// server can never become markup.

export function $(selector, root = document) {
  const found = root.querySelector(selector);
  if (!found) throw new Error(`missing element ${selector}`);
  return found;
}

export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "text") element.textContent = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function show(element, visible = true) {
  element.hidden = !visible;
}

// Put a message in a live region: screen readers announce it; "error" uses the alert style.
export function say(region, text, kind = "info") {
  region.textContent = "";
  region.classList.remove("message-error", "message-ok", "message-info");
  if (!text) {
    region.hidden = true;
    return;
  }
  region.classList.add(`message-${kind}`);
  region.hidden = false;
  region.append(document.createTextNode(text));
}

// Run an async action from a form: the submit button is disabled meanwhile (a double tap sends once).
export function onSubmit(form, action) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const buttons = form.querySelectorAll("button[type=submit]");
    if (form.dataset.busy === "true") return;
    form.dataset.busy = "true";
    form.setAttribute("aria-busy", "true");
    buttons.forEach((button) => { button.disabled = true; });
    try {
      await action(new FormData(form), event.submitter);
    } finally {
      form.dataset.busy = "false";
      form.removeAttribute("aria-busy");
      buttons.forEach((button) => { button.disabled = false; });
    }
  });
}

export function localDate(iso, language) {
  return new Date(iso).toLocaleDateString(locale(language), { day: "numeric", month: "numeric", year: "numeric" });
}

export function localTime(iso, language) {
  return new Date(iso).toLocaleTimeString(locale(language), { hour: "2-digit", minute: "2-digit" });
}

export function localDateTime(iso, language) {
  return `${localDate(iso, language)} ${localTime(iso, language)}`;
}

export function locale(language) {
  return { fi: "fi-FI", sv: "sv-FI", en: "en-GB" }[language] || "fi-FI";
}

// This month as YYYY-MM in the browser's time zone (the organizer's, in practice).
export function thisMonth() {
  const now = new Date();
  return `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, "0")}`;
}

export function isToday(iso) {
  const when = new Date(iso);
  const now = new Date();
  return when.getFullYear() === now.getFullYear() && when.getMonth() === now.getMonth() && when.getDate() === now.getDate();
}

// Replace an element's children, leaving out the absent ones (null, undefined, false).
export function fill(element, ...children) {
  element.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
}

// Name each cell by its column heading (data-label), so a narrow screen can show the table's rows
// as stacked cards with the heading beside each value (see .stack in wallet.css).
export function labelCells(table) {
  const headings = Array.from(table.querySelectorAll("thead th"), (th) => th.textContent.trim());
  for (const row of table.querySelectorAll("tbody tr")) {
    Array.from(row.children).forEach((cell, index) => { cell.dataset.label = headings[index] || ""; });
  }
}
