"""Walking the site by its own links, and the audit log signed to its end as a served demo
has it."""

from __future__ import annotations

import re
from collections import deque
from urllib.parse import urldefrag, urljoin, urlsplit

from ledger.audit.keys import SigningKey, generate_key, signing_key_file
from ledger.audit.log import AuditLog

_LINK = re.compile(r'<a\s[^>]*href="([^"]+)"', re.IGNORECASE)
MAX_PAGES = 400  # the demo has far fewer; a bound keeps a link loop from running away
SKIP = ("/logout",)  # following it would end the walk's session


def walk(client, start: str = "/") -> dict[str, int]:
    """The status of every same-site page reachable from ``start`` by GET."""
    seen: dict[str, int] = {}
    queue = deque([start])
    while queue and len(seen) < MAX_PAGES:
        path = queue.popleft()
        if path in seen:
            continue
        response = client.get(path)
        seen[path] = response.status_code
        if not response.content_type.startswith("text/html"):
            continue
        for href in _LINK.findall(response.get_data(as_text=True)):
            href = urldefrag(href.replace("&amp;", "&"))[0]
            target = urlsplit(urljoin("http://localhost" + path, href))
            if target.netloc != "localhost" or not target.path.startswith("/"):
                continue
            local = target.path + (f"?{target.query}" if target.query else "")
            if local not in seen and not local.startswith(SKIP):
                queue.append(local)
    return seen


def sign_the_log(market) -> None:
    """The audit log followed to the store's last event under a signed head, as the
    background worker keeps it (the signing key made on first use)."""
    generate_key(signing_key_file())
    AuditLog(market).follow(SigningKey.load(signing_key_file()))

