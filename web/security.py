"""Security headers on every response; the site loads nothing from other origins, but for
the payment provider's card form on the one page that shows it."""

from __future__ import annotations

from urllib.parse import urlsplit

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def card_page_policy(stripe_js_url: str) -> str:
    """The policy of the one page with a card form: the site's own, plus the provider's
    script, the frames of its card fields and the requests they make (Stripe's documented
    sources; a local fake such as localstripe serves all three from its own origin)."""
    parts = urlsplit(stripe_js_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    if parts.netloc == "js.stripe.com":
        script, frames, connect = origin, f"{origin} https://hooks.stripe.com", \
            "https://api.stripe.com"
    else:
        script = frames = connect = origin
    return CONTENT_SECURITY_POLICY.replace(
        "script-src 'self';", f"script-src 'self' {script}; frame-src {frames}; "
                              f"connect-src 'self' {connect};")


def register(app) -> None:
    @app.after_request
    def headers(response):
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if app.config.get("KAPOK_PRODUCTION"):
            response.headers.setdefault("Strict-Transport-Security",
                                        "max-age=31536000; includeSubDomains")
        return response
