"""Retirement certificates: the facts of one retirement, gathered from the marketplace, and
the PDF that states them (ReportLab; no Flask here, so scripts and tests can print one too)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from importlib.resources import files
from itertools import groupby
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from reportlab.graphics.barcode.qr import QrCode

from market.domain.errors import NoRuleInForceError
from market.domain.money import Money

GREEN = colors.HexColor("#2f6b3a")
MUTED = colors.HexColor("#5b6b5d")

# Embedded TrueType fonts, so a beneficiary in any script prints as letters, not boxes (the
# standard PDF fonts hold Latin-1 only). Noto Sans sets Latin, Cyrillic and Greek; the runs of
# text it lacks (Chinese, Japanese, Korean) are set in WenQuanYi Micro Hei. Each is a pinned
# dependency (pyproject.toml); ReportLab embeds only the glyphs a certificate uses.
TEXT_FONT, CJK_FONT = "KapokNotoSans", "KapokWenQuanYi"
_FONT_FILES = {
    TEXT_FONT: ("fontpkg_noto_sans", "files/NotoSans[wdth,wght].ttf"),  # its default: Regular
    CJK_FONT: ("paperang_p2_fonts_cjk", "fonts/wqy-microhei.ttc"),  # TrueType outlines
}


class CertificateFontError(RuntimeError):
    """A font the certificates embed is not installed."""


@cache
def _register_fonts() -> frozenset[int]:
    """Registers the certificate's fonts with ReportLab (once per process) and returns the
    code points the text font covers. Raises CertificateFontError if one is missing."""
    for name, (package, path) in _FONT_FILES.items():
        try:
            font_file = files(package).joinpath(path)
        except ModuleNotFoundError:
            raise CertificateFontError(
                f"the certificate font package {package} is not installed: run make install"
            ) from None
        pdfmetrics.registerFont(TTFont(name, str(font_file), subfontIndex=0))
        # One face serves as bold too: the markup's <b> must not fall back to Helvetica.
        pdfmetrics.registerFontFamily(name, normal=name, bold=name, italic=name,
                                      boldItalic=name)
    return frozenset(pdfmetrics.getFont(TEXT_FONT).face.charToGlyph)


def _markup(text: str) -> str:
    """``text`` escaped for a Paragraph, each run of characters the text font lacks set in
    the CJK font."""
    covered = _register_fonts()
    runs = []
    for lacking, characters in groupby(text, key=lambda character: ord(character) not in covered):
        run = escape("".join(characters))
        runs.append(f'<font face="{CJK_FONT}">{run}</font>' if lacking else run)
    return "".join(runs)


@dataclass(frozen=True)
class SerialLine:
    """One retired serial block as printed: its serial number, project, vintage, tonnes."""

    serial: str
    project: str
    vintage: int
    quantity: int


@dataclass(frozen=True)
class BenefitShares:
    """A project's benefit-sharing rule version: (recipient, percent) in recipient order."""

    project: str
    version: int
    effective_from: datetime
    shares: tuple[tuple[str, Decimal], ...]


@dataclass(frozen=True)
class OrderSplit:
    """What the buyer paid for an order that retired at once, and who was allocated what."""

    order_id: str
    state: str
    total: str
    payees: tuple[tuple[str, str], ...]  # (recipient, amount), farms summed per recipient


@dataclass(frozen=True)
class RegistryStanding:
    """Where a retirement of serials mirrored from Verra stands at Verra, their registry of
    record: ``phase`` is pending, confirmed (with Verra's serials and date) or failed (with
    Verra's reason; the credits went back)."""

    phase: str
    serials: tuple[str, ...] = ()
    on: date | None = None
    failure: str = ""


@dataclass(frozen=True)
class CertificateFacts:
    """Everything a retirement certificate states; ``verification_url`` is the public page
    the QR code points to."""

    retirement_id: str
    beneficiary: str
    quantity: int
    retired_at: datetime
    reason: str
    details: str
    claim_type: str
    use: str
    period_start: date | None
    period_end: date | None
    serials: tuple[SerialLine, ...]
    projects: tuple[tuple[str, str], ...]  # (registry id, name)
    verification_url: str
    rules: tuple[BenefitShares, ...] = ()
    order: OrderSplit | None = None
    registry: RegistryStanding | None = None  # None: Kapok's own serials, final at once
    registry_urls: tuple[tuple[str, str], ...] = ()  # (registry id, page at Verra)


def order_of_account(market, account: str):
    """The order whose escrow account retired (a retire-at-once order), or None: the order
    book knows each order's escrow by the name its reservation recorded."""
    order_id = market.view.order_of_escrow(account)
    return market.get_order(order_id) if order_id is not None else None


def certificate_facts(market, retirement_id: str, verification_url: str) -> CertificateFacts:
    """Gathers a retirement's facts from the marketplace. Raises UnknownRetirementError."""
    retirement = market.ledger.get_retirement(retirement_id)
    claim = retirement.claim
    project_ids = sorted({block.project for block in retirement.blocks})
    details = {pid: market.ledger.get_project(pid).details for pid in project_ids}
    projects = tuple((pid, details[pid].name) for pid in project_ids)
    rules = []
    for project in project_ids:
        version = _rule_for(market, project, retirement.created_on)
        if version is not None:
            rules.append(BenefitShares(project, version.version, version.effective_from,
                                       tuple(version.shares.items())))
    order = order_of_account(market, retirement.account)
    return CertificateFacts(
        retirement_id=retirement.retirement_id, beneficiary=claim.beneficiary,
        quantity=retirement.quantity, retired_at=retirement.created_on,
        reason=claim.reason, details=claim.details, claim_type=claim.claim_type,
        use=claim.use, period_start=claim.period_start, period_end=claim.period_end,
        serials=tuple(SerialLine(block.serial, block.project, block.vintage, block.quantity)
                      for block in retirement.blocks),
        projects=projects, verification_url=verification_url, rules=tuple(rules),
        order=_order_split(market, order) if order is not None else None,
        registry=None if retirement.registry_phase is None else RegistryStanding(
            retirement.registry_phase, tuple(retirement.registry_serials),
            retirement.registry_date, retirement.failure),
        registry_urls=tuple((pid, details[pid].registry_url) for pid in project_ids
                            if details[pid].registry_url),
    )


def _rule_for(market, project: str, moment: datetime):
    """The version in force at the retirement, else the one in force now (credits sold
    before the project's first rule), else None."""
    try:
        rule = market.benefit_rule(project)
    except NoRuleInForceError:
        return None
    try:
        return rule.rule_at(moment)
    except NoRuleInForceError:
        return rule.versions[-1] if rule.versions else None


def _order_split(market, order) -> OrderSplit:
    payees: dict[str, int] = {}
    sale = market.booked_sale(order)  # None: not paid yet, no money went anywhere
    for allocation in sale.allocations() if sale else ():
        payees[allocation.recipient] = payees.get(allocation.recipient, 0) + allocation.minor
    return OrderSplit(
        order.order_id, order.state, str(Money.from_minor(order.total_minor, order.currency)),
        tuple((recipient, str(Money.from_minor(minor, order.currency)))
              for recipient, minor in payees.items()),
    )


def certificate_pdf(facts: CertificateFacts, *, compress: bool = True,
                    invariant: bool = False) -> bytes:
    """The certificate as a one- or two-page A4 PDF. ``compress=False, invariant=True``
    writes plain, reproducible content streams (for tests and archiving)."""
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm, topMargin=18 * mm,
        bottomMargin=18 * mm, title=f"Retirement certificate {facts.retirement_id}",
        author="Kapok registry", subject=f"{facts.quantity} t CO2e retired",
        pageCompression=1 if compress else 0, invariant=1 if invariant else 0)
    document.build(_story(facts))
    return buffer.getvalue()


def _story(facts: CertificateFacts) -> list:
    _register_fonts()  # the styles below name the fonts it registers
    styles = getSampleStyleSheet()
    title = ParagraphStyle("title", parent=styles["Title"], textColor=GREEN, fontName=TEXT_FONT)
    body = ParagraphStyle("body", parent=styles["BodyText"], fontName=TEXT_FONT)
    small = ParagraphStyle("small", parent=body, fontSize=8, textColor=MUTED)
    heading = ParagraphStyle("heading", parent=styles["Heading3"], textColor=GREEN,
                             fontName=TEXT_FONT)
    # Verra's serials run to some 75 characters: small enough to stay on one line.
    serial = ParagraphStyle("serial", parent=body, fontSize=6.5, leading=9)

    def text(value: object, style=body) -> Paragraph:
        return Paragraph(_markup(str(value)), style)

    period = "—"
    if facts.period_start or facts.period_end:
        period = f"{facts.period_start or '…'} to {facts.period_end or '…'}"
    standing = facts.registry
    story = [
        Paragraph("Certificate of retirement", title),
        text("Verified carbon credits retired for good on the Kapok registry "
             "(Tambopata buffer zone, Madre de Dios, Peru)" if standing is None else
             "Verified Carbon Units of Verra, whose registry is the registry of record of "
             "these serials, retired through Kapok", small),
        *_standing_notice(standing, text),
        Spacer(1, 6 * mm),
        Paragraph(f"<b>{facts.quantity:,} tonnes CO2e</b> retired on behalf of", body),
        Paragraph(f"<b>{_markup(facts.beneficiary)}</b>",
                  ParagraphStyle("beneficiary", parent=body, fontSize=16, leading=20)),
        Spacer(1, 4 * mm),
        _table([[text("Retirement"), text(facts.retirement_id)],
                [text("Retired on"), text(facts.retired_at.strftime("%Y-%m-%d %H:%M UTC"))],
                [text("At Verra"), text(_standing_text(standing))],
                [text("Reason"), text(facts.reason)],
                [text("Details"), text(facts.details or "—")],
                [text("Claim"), text(f"{facts.claim_type}, {facts.use} market")],
                [text("Consumption period"), text(period)]], widths=(45 * mm, 125 * mm)),
        Paragraph("Serial numbers retired", heading),
        _table([[text("Serial block" if standing is None else "Verra serial"), text("Project"),
                 text("Vintage"), text("Tonnes")]]
               + [[text(line.serial, body if standing is None else serial), text(line.project),
                   text(line.vintage), text(f"{line.quantity:,}")] for line in facts.serials],
               widths=(106 * mm, 24 * mm, 18 * mm, 22 * mm), header=True),
        Paragraph("Projects", heading),
        *[text(f"{registry_id}: {name}") for registry_id, name in facts.projects],
        *[text(f"{registry_id} at Verra, its registry of record: {url}")
          for registry_id, url in facts.registry_urls],
        Paragraph("Where the money went", heading),
        *_money_trail(facts, text),
        Spacer(1, 6 * mm),
        _table([[QrCode(facts.verification_url, width=32 * mm, height=32 * mm),
                 [text("Check this retirement on the public registry:"),
                  text(facts.verification_url),
                  text("Retired serials leave every account and can never be sold or retired "
                       "again; the registry's signed audit log proves this record.", small)]]],
               widths=(38 * mm, 132 * mm), grid=False),
    ]
    return story


def _standing_text(standing: RegistryStanding | None) -> str:
    """The retirement's phase at Verra, in one line."""
    if standing is None:
        return "not applicable: Kapok is the registry of record of these serials"
    if standing.phase == "pending":
        return "PENDING: not yet retired at Verra"
    if standing.phase == "confirmed":
        on = standing.on.isoformat() if standing.on else "a date not recorded"
        return f"confirmed at Verra on {on} with serial {', '.join(standing.serials)}"
    return f"FAILED: {standing.failure}; the credits were returned"


def _standing_notice(standing: RegistryStanding | None, text) -> list:
    """A pending or failed retirement says so before anything else."""
    if standing is None or standing.phase == "confirmed":
        return []
    style = ParagraphStyle("notice", fontName=TEXT_FONT, fontSize=11, leading=14,
                           textColor=colors.HexColor("#8a5a00"), spaceBefore=4 * mm)
    if standing.phase == "pending":
        return [text("PENDING AT VERRA. Kapok has locked these serials, so they can never be "
                     "sold or retired again in Kapok, but Verra has not yet confirmed retiring "
                     "them: until it does, this certificate is not evidence of a retirement "
                     "at Verra. Check its state on the public registry.", style)]
    return [text(f"FAILED AT VERRA: {standing.failure}. Verra did not retire these serials; "
                 "the credits were returned and this certificate is void.", style)]


def _money_trail(facts: CertificateFacts, text) -> list:
    lines = []
    for rule in facts.rules:
        shares = ", ".join(f"{recipient} {share.normalize():f}%"
                           for recipient, share in rule.shares)
        lines.append(text(f"{rule.project}: proceeds are shared {shares} (benefit-sharing rule "
                          f"version {rule.version}, in force from "
                          f"{rule.effective_from.date().isoformat()})."))
    if not facts.rules:
        lines.append(text("No benefit-sharing rule is recorded for these projects."))
    order = facts.order
    if order is None:
        lines.append(text("These credits were retired from the buyer's own holding; the "
                          "sale that delivered them was shared by the rule above."))
        return lines
    lines.append(text(f"Order {order.order_id} ({order.state}) paid {order.total}, "
                      "allocated as follows:"))
    if order.payees:
        lines.append(_table([[text(recipient), text(amount)] for recipient, amount in order.payees],
                            widths=(60 * mm, 40 * mm)))
    return lines


def _table(rows: list, widths: tuple, header: bool = False, grid: bool = True) -> Table:
    table = Table(rows, colWidths=list(widths), hAlign="LEFT")
    style = [("VALIGN", (0, 0), (-1, -1), "TOP")]
    if grid:
        style.append(("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#dde5dc")))
    if header:
        style.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e7f1e4")))
    table.setStyle(TableStyle(style))
    return table
