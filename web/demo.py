"""The demo's people: one operator, one auditor and two buyer companies (printed by
``kapok demo``; never use these passwords outside the demo)."""

from __future__ import annotations

from identity.application import Identity
from identity.domain import AUDITOR, OPERATOR, AlreadyRegisteredError

DEMO_PASSWORD_NOTE = "demo only"
OPERATOR_LOGIN = ("operator@ecosphere.example", "kapok-demo-operator")
AUDITOR_LOGIN = ("auditor@audit.example", "kapok-demo-auditor")
BUYER_LOGIN = ("buyer@andes-coffee.example", "kapok-demo-buyer")
OTHER_BUYER_LOGIN = ("buyer@lima-logistics.example", "kapok-demo-buyer")

# (organisation, person's name, login): the organisations' slugs match the ledger demo's
# holding accounts org-andes-coffee-roasters and org-lima-logistics.
BUYERS = (
    ("Andes Coffee Roasters", "Rosa Quispe", BUYER_LOGIN),
    ("Lima Logistics", "Jorge Huamán", OTHER_BUYER_LOGIN),
)


def seed_people(identity: Identity) -> list[tuple[str, str, str]]:
    """Creates the demo logins if missing; returns (role, e-mail, password) to print."""
    logins = []
    for role, name, (email, password) in ((OPERATOR, "Elena Operator (Ecosphere+)", OPERATOR_LOGIN),
                                          (AUDITOR, "Arturo Auditor", AUDITOR_LOGIN)):
        try:
            identity.add_user(email, name, role, password)
        except AlreadyRegisteredError:
            pass
        logins.append((role, email, password))
    for organisation, name, (email, password) in BUYERS:
        try:
            identity.sign_up(organisation, name, email, password)
        except AlreadyRegisteredError:
            pass
        logins.append(("buyer", email, password))
    return logins
