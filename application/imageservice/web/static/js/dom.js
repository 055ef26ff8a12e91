/* Building elements (never by parsing HTML), status pills, toasts and notices across pages. */

import { statusWords } from "./words.js";

/** Build an element: el("p", {className: "x", text: "hi"}, [children]). */
export function el(tag, props, children) {
  const node = document.createElement(tag);
  Object.entries(props || {}).forEach(([key, value]) => {
    if (value === undefined || value === null || value === false) return;
    if (key === "text") node.textContent = value;
    else if (key === "className") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "hidden") node.hidden = true;
    else node.setAttribute(key, value === true ? "" : value);
  });
  (children || []).forEach((child) => {
    if (child === null || child === undefined || child === false) return;
    node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  });
  return node;
}

export function pill(status, words) {
  return el("span", { className: "pill pill-" + status, text: words || statusWords(status) });
}

/** Show an error (or hide the box when error is null). */
export function showError(node, words) {
  if (!node) return;
  node.textContent = words || "";
  node.hidden = !words;
}

export function toast(text, kind) {
  const region = document.getElementById("toasts");
  if (!region) return;
  const node = el("div", { className: "toast" + (kind === "error" ? " is-error" : ""), text: text });
  region.appendChild(node);
  setTimeout(() => node.remove(), kind === "error" ? 8000 : 4000);
}

const NOTICE_KEY = "cis-notice";

/** Leave a message for the next page (e.g. "deleted" before going back to the gallery). */
export function leaveNotice(text) {
  try { sessionStorage.setItem(NOTICE_KEY, text); } catch (e) { /* storage off: no notice */ }
}

export function showLeftNotice() {
  let text = null;
  try { text = sessionStorage.getItem(NOTICE_KEY); sessionStorage.removeItem(NOTICE_KEY); } catch (e) { text = null; }
  if (text) toast(text);
}
