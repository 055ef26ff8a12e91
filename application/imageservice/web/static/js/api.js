/* The JSON API of this app: CSRF on writes, errors in words, short-lived download URLs. */

export const WRITE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);
export const CSRF_HEADER = "X-CSRF-Token";

// Words for when the server could not send its own message (network failure, proxy page...).
const HTTP_WORDS = {
  400: "The request was not accepted.",
  401: "Your workspace has expired. Reload the page to start a new one.",
  403: "That is not allowed. Reload the page and try again.",
  404: "That image no longer exists.",
  409: "That clashes with the image's current state.",
  413: "That is too large.",
  415: "That file type is not supported.",
  422: "That is more than the service can do with this image.",
  429: "Too many requests at once. Wait a moment and try again.",
  500: "Something went wrong on our side. Please try again.",
  502: "The service is briefly unavailable. Please try again.",
  503: "The service is briefly unavailable. Please try again.",
  504: "The service took too long to answer. Please try again."
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") : "";
}

/** The message an answer carries in {"error": {"code", "message"}}, else words for its status. */
export function errorFromBody(status, body) {
  if (status === 401) return new ApiError(status, "unauthenticated", HTTP_WORDS[401]);
  if (body && body.error && typeof body.error.message === "string" && body.error.message) {
    return new ApiError(status, body.error.code || "error", body.error.message);
  }
  return new ApiError(status, "http_" + status, HTTP_WORDS[status] || "The request failed (HTTP " + status + ").");
}

/** Call the JSON API of this app. Writes carry the CSRF token; failures throw ApiError. */
export async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  const init = { method: method, headers: headers, credentials: "same-origin" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (WRITE_METHODS.has(method)) headers[CSRF_HEADER] = csrfToken();
  const response = await fetch(path, init);
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!response.ok) throw errorFromBody(response.status, data);
  return data;
}

export function imagePath(imageId) {
  return "/api/images/" + encodeURIComponent(imageId);
}

/** Ask for a short-lived URL of one variant of an image. */
export async function downloadUrl(imageId, variant) {
  const answer = await api("GET", imagePath(imageId) + "/download?variant=" + encodeURIComponent(variant));
  return answer.download_url;
}

/** Make the browser download a URL (any origin: the server sets Content-Disposition). */
export function startDownload(url) {
  const link = document.createElement("a");
  link.href = url;
  link.rel = "noopener";
  link.setAttribute("download", "");
  document.body.appendChild(link);
  link.click();
  link.remove();
}
