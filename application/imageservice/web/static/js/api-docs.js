// /api/docs: Swagger UI (its bundle is loaded by the page before this module runs) over
// /api/openapi.json. Try-it-out calls go out with the workspace cookie, so writes carry the
// page's CSRF token, the same header the gallery's own calls send (api.js).
import { CSRF_HEADER, WRITE_METHODS, csrfToken } from "./api.js";

function withCsrf(request) {
  const sameOrigin = new URL(request.url, window.location.href).origin === window.location.origin;
  const token = csrfToken();
  if (sameOrigin && token && WRITE_METHODS.has((request.method || "GET").toUpperCase())) {
    request.headers[CSRF_HEADER] = token;
  }
  return request;
}

const mount = document.getElementById("swagger-ui");
if (mount && window.SwaggerUIBundle) {
  window.SwaggerUIBundle({
    url: mount.dataset.specUrl,
    domNode: mount,
    // Deep links put a link inside each operation's toggle button: nested controls that
    // screen readers cannot reach (axe nested-interactive).
    deepLinking: false,
    displayOperationId: true,
    defaultModelsExpandDepth: 0,
    // Plain code blocks: the highlighter's palette is below AA contrast on its own background.
    syntaxHighlight: false,
    validatorUrl: null, // its default is a public validator service: nothing leaves this site
    requestInterceptor: withCsrf,
  });
}

// Gaps in Swagger UI's markup, mended as its elements appear: icon-only buttons (close, copy)
// and selects without an accessible name (axe "button-name", "select-name"), and code blocks
// that scroll without being reachable by keyboard (axe "scrollable-region-focusable").
const ICON_BUTTON_NAMES = [["button.close-modal", "Close"], [".copy-to-clipboard > button", "Copy to clipboard"]];

function selectName(select) {
  const row = select.closest("[data-param-name]");
  if (row) return row.dataset.paramName;
  return select.closest(".response-controls") ? "Response media type" : "Request media type";
}

function mendMarkup() {
  for (const [selector, name] of ICON_BUTTON_NAMES) {
    for (const button of mount.querySelectorAll(selector + ":not([aria-label])")) button.setAttribute("aria-label", name);
  }
  for (const select of mount.querySelectorAll("select:not([aria-label])")) {
    select.setAttribute("aria-label", selectName(select));
  }
  for (const block of mount.querySelectorAll("pre:not([tabindex])")) {
    block.setAttribute("tabindex", "0");
  }
}
if (mount) new MutationObserver(mendMarkup).observe(mount, { childList: true, subtree: true });
