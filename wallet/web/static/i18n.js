// Finnish first; Swedish and English selectable. Each text is [fi, sv, en]. Elements carry
// data-i18n="key" (their text) or data-i18n-attr="attribute:key;..." and are filled on a switch.

import { ApiError, ConnectionLost } from "./api.js";
import { STRINGS } from "./strings.js";

export const LANGUAGES = ["fi", "sv", "en"];
const STORAGE = "wallet.language";
let current = "fi";
const listeners = [];

export function language() {
  return current;
}

export function t(key, params = {}) {
  const entry = STRINGS[key];
  let text = entry ? entry[LANGUAGES.indexOf(current)] ?? entry[0] : key;
  for (const [name, value] of Object.entries(params)) text = text.replaceAll(`{${name}}`, String(value));
  return text;
}

export function apply(root = document) {
  for (const element of root.querySelectorAll("[data-i18n]")) element.textContent = t(element.dataset.i18n);
  for (const element of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of element.dataset.i18nAttr.split(";")) {
      const [attribute, key] = pair.split(":");
      element.setAttribute(attribute.trim(), t(key.trim()));
    }
  }
  for (const button of root.querySelectorAll("[data-language]")) {
    button.setAttribute("aria-pressed", String(button.dataset.language === current));
  }
}

export function setLanguage(next) {
  if (!LANGUAGES.includes(next)) return;
  current = next;
  sessionStorage.setItem(STORAGE, next);
  document.documentElement.lang = next;
  apply();
  for (const listener of listeners) listener(next);
}

// Wire the language buttons, pick the language (?lang=, then this tab's choice, then Finnish).
export function setUp(onChange) {
  if (onChange) listeners.push(onChange);
  for (const button of document.querySelectorAll("[data-language]")) {
    button.addEventListener("click", () => setLanguage(button.dataset.language));
  }
  const asked = new URLSearchParams(location.search).get("lang");
  current = LANGUAGES.includes(asked) ? asked : LANGUAGES.includes(sessionStorage.getItem(STORAGE)) ? sessionStorage.getItem(STORAGE) : "fi";
  document.documentElement.lang = current;
  apply();
}

export function categoryName(code, names) {
  return (names && names.get(code)) || code;
}

// A problem in plain words: the known codes by name; otherwise the server's own detail.
export function problemText(error) {
  if (error instanceof ConnectionLost) return t("problem.connection");
  if (!(error instanceof ApiError)) return t("problem.unexpected");
  const key = `problem.${error.code}`;
  if (STRINGS[key]) {
    const extra = error.code === "rate_limited" ? { seconds: error.problem.retry_after_seconds ?? "?" } : {};
    let text = t(key, extra);
    if (error.code === "validation_error" && error.problem.detail) text += ` (${error.problem.detail})`;
    return text;
  }
  return error.problem.detail || t("problem.unexpected");
}

// A page section kept in its own module brings its own strings, and re-renders on a switch.
export function addStrings(table) {
  for (const [key, texts] of Object.entries(table)) {
    if (key in STRINGS) throw new Error(`string ${key} defined twice`);
    STRINGS[key] = texts;
  }
}

export function onLanguageChange(listener) {
  listeners.push(listener);
}
