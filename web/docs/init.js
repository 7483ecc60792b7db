// SPDX-License-Identifier: MIT
// Starts Swagger UI on the /docs page against the server's OpenAPI document. It lives in
// its own file rather than an inline <script> so that a Content-Security-Policy of
// script-src 'self' needs no 'unsafe-inline' or hash exception.
window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  persistAuthorization: true,
  deepLinking: true,
});
