// Starts Swagger UI on the API's own OpenAPI document. A file, not an inline script, so the
// site's Content-Security-Policy (script-src 'self') holds on the documentation page too.
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null, // the default badge would load an image from another site
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
