"""The site's forms, each with a valid baseline and hostile values by field, and the stores'
positions that show whether anything was recorded."""

from __future__ import annotations

import secrets

from tests.web.conftest import LOGINS

OVERLONG = "x" * 10_000
HUGE = "1" + "0" * 30
NOT_WHOLE = ["-5", "0", HUGE, "ten", "NaN", "Infinity", "-Infinity", "1e3", "1.5", "0x10", "",
             " ", "9" * 10_000, "5\x00", "<script>alert(1)</script>"]
NOT_MONEY = ["-1", "0", "0.00", HUGE, "abc", "NaN", "Infinity", "1e3", "12.345", "",
             "9" * 10_000, "5\x00"]
NOT_PRICE = [value for value in NOT_MONEY if value != "12.345"] + ["1.1234567"]
# Estimates read spreadsheet quantities: 1e3 kWh is a thousand, and zero of one activity is fine.
NOT_QUANTITY = ["-1", HUGE, "abc", "NaN", "Infinity", "-Infinity", "1e999999", "",
                "9" * 10_000, "5\x00"]
NOT_HECTARES = ["-1", HUGE, "abc", "NaN", "Infinity", "1e3", "1.1234567", "", "5\x00"]
BAD_SERIALS = ["12-3", "one-two", "1-", "-5", "1--2", "9" * 10_000, "1-" + HUGE, "KAP-1-x",
               "1-1", "\x00", OVERLONG]
NOT_PRINTABLE = ["Acme\x00", "Acme\x07", "\u202eemaN", OVERLONG, ""]
UNKNOWN_LISTING = "00000000-0000-4000-8000-000000000000"


def nonce() -> str:
    return secrets.token_urlsafe(16)


def listing_of(market, project="VCS-1067", vintage=2021) -> str:
    return next(str(listing.id) for listing in market.listings()
                if (listing.project_registry_id, listing.vintage_year) == (project, vintage))


def position(app) -> int:
    return app.extensions["kapok_market"].recorder.max_notification_id() or 0


def identity_position(app) -> int:
    return app.extensions["kapok_identity"].recorder.max_notification_id() or 0


# --- the forms: (role, path, valid baseline, hostile values by field) ----------------------

def forms(market) -> dict:
    listing = listing_of(market)
    held = market.ledger.get_account("org-andes-coffee-roasters").blocks[0]
    return {
        "sign-up": ("anonymous", "/signup", {
            "organisation": "Fuzz Roasters", "name": "Fuzz Tester", "email": "fuzz@x.example",
            "password": "a long passphrase", "confirm": "a long passphrase"}, {
            "organisation": [OVERLONG, "", "!!!"], "name": [OVERLONG, ""],
            "email": [OVERLONG, "not-an-email", "a@b\x00.example", ""],
            "password": ["short", OVERLONG], "confirm": ["different passphrase"]}),
        "log-in": ("anonymous", "/login", {
            "email": LOGINS["buyer"][0], "password": LOGINS["buyer"][1]}, {
            "email": [OVERLONG, "not-an-email", "\x00", ""],
            "password": ["wrong password", OVERLONG, ""]}),
        "quote by tonnes": ("anonymous", f"/catalogue/{listing}/quote",
                            {"by": "tonnes", "tonnes": "10"},
                            {"tonnes": NOT_WHOLE, "by": ["bitcoin", ""]}),
        "quote by budget": ("anonymous", f"/catalogue/{listing}/quote",
                            {"by": "amount", "amount": "250.00"}, {"amount": NOT_MONEY}),
        "quote by emissions": ("anonymous", f"/catalogue/{listing}/quote",
                               {"by": "estimate", "electricity_kwh": "12000",
                                "electricity_country": "PE"},
                               {"electricity_kwh": NOT_QUANTITY, "electricity_country": ["ZZ"]}),
        "place order": ("buyer", "/my/orders", {
            "listing_id": listing, "tonnes": "7", "nonce": nonce()}, {
            "tonnes": NOT_WHOLE,
            "listing_id": [UNKNOWN_LISTING, "x" * 64, OVERLONG, "' OR 1=1 --", "\x00", ""],
            "nonce": ["<script>", "short", OVERLONG],
            "period_start": ["2026-13-45", "yesterday"], "claim_type": ["bragging"]}),
        "retire at once": ("buyer", "/my/orders", {
            "listing_id": listing, "tonnes": "7", "nonce": nonce(), "retire_now": "y",
            "beneficiary": "Andes Coffee Roasters", "reason": "Other"}, {
            "beneficiary": NOT_PRINTABLE[:-1], "reason": ["Because"],
            "details": ["x" * 501, "\x00"]}),
        "retire": ("buyer", "/my/portfolio/retire", {
            "beneficiary": "Andes Coffee Roasters", "reason": "Other", "quantity": "5",
            "nonce": nonce()}, {
            "quantity": [v for v in NOT_WHOLE if v.strip()] + ["100000"],
            "beneficiary": NOT_PRINTABLE, "details": ["x" * 501, "\x00"],
            "period_end": ["0000-00-00"], "claim_type": ["bragging"]}),
        "retire serials": ("buyer", "/my/portfolio/retire", {
            "beneficiary": "Andes Coffee Roasters", "reason": "Other", "quantity": "",
            "serials": f"{held.first}-{held.first + 1}", "nonce": nonce()}, {"serials": BAD_SERIALS}),
        "console issuance": ("operator", "/console/projects/KAP-AF-01/issuances", {
            "key": "", "vintage": "2024", "quantity": "100"}, {
            "quantity": NOT_WHOLE, "vintage": ["1800", "abc", HUGE]}),
        "console listing": ("operator", "/console/listings/new", {
            "key": "", "project": "KAP-AF-01", "vintage": "2024",
            "inventory_account": "ecosphere-inventory", "price_per_tonne": "18.50",
            "currency": "USD", "on_offer": "50", "minimum_quantity": "1", "tiers": ""}, {
            "price_per_tonne": NOT_PRICE, "on_offer": NOT_WHOLE, "minimum_quantity": NOT_WHOLE,
            "vintage": ["1800", HUGE, "2024.0"], "project": ["NOPE-1", OVERLONG],
            "currency": ["XXX", "usd"], "inventory_account": ["nobody"],
            "tiers": ["100", "x 12.00", "100 -1", "100 NaN", "\n".join(["1 1"] * 21)]}),
        "console payout": ("operator", "/console/payouts", {
            "currency": "USD", "recipient": "farmers", "farm_code": "COOP-001",
            "amount": "1.00", "paid_on": "2026-01-15", "reference": "BCP-FUZZ"}, {
            "amount": NOT_MONEY + ["100000000.00"], "recipient": ["Farmers!", OVERLONG, ""],
            "farm_code": ["COOP 1", OVERLONG], "paid_on": ["2026-02-30", "soon", ""],
            "reference": [OVERLONG, ""], "currency": ["XXX"]}),
        "console farm": ("operator", "/console/farms", {
            "key": "", "project": "KAP-AF-01", "farm_code": "COOP-FUZZ",
            "farmer_name": "Familia Fuzz", "forest_ha": "20", "agroforestry_ha": "4.5",
            "weight": ""}, {
            "forest_ha": NOT_HECTARES, "agroforestry_ha": NOT_HECTARES,
            "weight": NOT_HECTARES[:-2], "farm_code": ["COOP 9", "COOP--9", OVERLONG, ""],
            "farmer_name": [OVERLONG, ""], "project": ["NOPE-1"]}),
        "console rule": ("operator", "/console/rules", {
            "project": "KAP-AF-01",
            "shares": "farmers 70\naider-field-programme 20\necosphere-fee 10"}, {
            "shares": ["farmers 60\naider-field-programme 30", "farmers 60\nfarmers 40",
                       "farmers NaN", "farmers 1e2", "farmers -10\naider 110", "farmers",
                       "\n".join(f"r{i} 1" for i in range(21)), OVERLONG, ""],
            "effective_from": ["2026-13-01T00:00", "tomorrow"], "project": ["NOPE-1"]}),
    }


FORM_NAMES = ["sign-up", "log-in", "quote by tonnes", "quote by budget", "quote by emissions",
              "place order", "retire at once", "retire", "retire serials", "console issuance",
              "console listing", "console payout", "console farm", "console rule"]

