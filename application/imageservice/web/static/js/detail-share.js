/* The detail page's Share card: make a link (expiry, and whether the original goes too), copy
   the link or the embed HTML, see each link's views and expiry, revoke it. */

import { api } from "./api.js";
import { el, showError } from "./dom.js";
import { errorWords, formatLocalTime, formatNumber } from "./words.js";

/** Put text on the clipboard; where the page may not (an insecure origin), select it for the user. */
function copyText(text, field) {
  if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
  field.select();
  return document.execCommand("copy") ? Promise.resolve() : Promise.reject(new Error("Copy it by hand: it is selected."));
}

function linkItem(link, actions) {
  const field = el("input", { className: "share-url", type: "text", readonly: true, value: link.url,
                              "aria-label": "Share link" });
  const views = link.views === 1 ? "1 view" : formatNumber(link.views) + " views";
  return el("li", { className: "share-link", dataset: { linkId: link.link_id } }, [
    field,
    el("p", { className: "share-facts" }, [
      views + " · until " + formatLocalTime(link.expires_at) + (link.original ? " · original shared" : "")
    ]),
    el("div", { className: "button-row" }, [
      el("button", { type: "button", className: "button small", dataset: { action: "copy-link" }, text: "Copy link" }),
      el("button", { type: "button", className: "button small", dataset: { action: "copy-embed" }, text: "Copy embed HTML" }),
      el("button", { type: "button", className: "button small danger", dataset: { action: "revoke" }, text: "Revoke" })
    ])
  ]);
}

export function startShare(page) {
  const form = document.getElementById("share-form");
  if (!form) return;   // not ready: nothing to share yet
  const list = document.getElementById("share-links");
  const empty = document.getElementById("share-empty");
  const error = document.getElementById("share-error");
  const status = document.getElementById("share-status");
  const linksPath = page.path + "/links";
  let links = [];

  function render() {
    list.replaceChildren(...links.map((link) => linkItem(link)));
    empty.hidden = links.length > 0;
  }

  function load() {
    return api("GET", linksPath).then((body) => { links = body.links; render(); });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const button = document.getElementById("share-create");
    button.disabled = true;
    showError(error, null);
    api("POST", linksPath, {
      expires_in: Number(document.getElementById("share-expiry").value),
      original: document.getElementById("share-original").checked
    }).then(function (link) {
      links = [link, ...links];
      render();
      status.textContent = "Link created.";
    }).catch((failure) => showError(error, errorWords(failure)))
      .then(() => { button.disabled = false; });
  });

  list.addEventListener("click", function (event) {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const item = button.closest(".share-link");
    const link = links.find((candidate) => candidate.link_id === item.dataset.linkId);
    showError(error, null);
    if (button.dataset.action === "revoke") {
      button.disabled = true;
      api("DELETE", "/api/links/" + encodeURIComponent(link.link_id)).then(function () {
        links = links.filter((candidate) => candidate !== link);
        render();
        status.textContent = "Link revoked: it no longer works anywhere.";
      }).catch(function (failure) { button.disabled = false; showError(error, errorWords(failure)); });
      return;
    }
    const text = button.dataset.action === "copy-link" ? link.url : link.embed_html;
    copyText(text, item.querySelector(".share-url")).then(function () {
      button.textContent = "Copied";
      status.textContent = button.dataset.action === "copy-link" ? "Link copied." : "Embed HTML copied.";
      setTimeout(() => { button.textContent = button.dataset.action === "copy-link" ? "Copy link" : "Copy embed HTML"; }, 2000);
    }).catch((failure) => showError(error, errorWords(failure)));
  });

  load().catch((failure) => showError(error, errorWords(failure)));
}
