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
    deepLinking: true,
    displayOperationId: true,
    defaultModelsExpandDepth: 0,
    validatorUrl: null, // its default is a public validator service: nothing leaves this site
    requestInterceptor: withCsrf,
  });
}
