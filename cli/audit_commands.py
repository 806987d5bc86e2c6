"""``kapok audit``: replay, verify, export and prove, for auditors."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import click

from ledger.domain.errors import ConflictError, LedgerError
from cli.output import emit, json_option, open_ledger, progress_bar


class AuditFailedError(LedgerError, ConflictError):
    """Verification found problems (the report has been printed)."""


def signing_key():
    from ledger.audit.keys import SigningKey, signing_key_file

    return SigningKey.load(signing_key_file())


def public_key(path: str | None) -> bytes:
    from ledger.audit.keys import load_public_key, public_key_file, signing_key_file

    if path:
        return load_public_key(Path(path))
    private = signing_key_file()
    published = public_key_file(private)
    return load_public_key(published if published.exists() else private)


def follow_log(ledger, quiet: bool = False):
    """Brings the audit log up to the store's last event; returns the latest signed head."""
    from ledger.audit.log import AuditLog

    log = AuditLog(ledger)
    key = signing_key()
    latest = log.latest_head()
    behind = (ledger.recorder.max_notification_id() or 0) - (latest.last_position if latest else 0)
    if quiet or behind < 5000:
        return log, log.follow(key)
    with progress_bar() as bar:
        task = bar.add_task("logging events", total=behind)
        head = log.follow(key, progress=lambda n: bar.advance(task, n))
    return log, head


@click.group()
def audit():
    """Tamper evidence: replay from event 0, verify, export, prove."""


@audit.command()
@click.option("--output", type=click.Path(dir_okay=False), help="Private key file (default: KAPOK_SIGNING_KEY_FILE or ./var/keys/tree-signing-key.pem).")
@click.option("--force", is_flag=True, help="Replace an existing key.")
def keygen(output, force):
    """Create the Ed25519 key that signs tree heads (kept outside the event store)."""
    from ledger.audit.keys import generate_key, signing_key_file

    path = Path(output) if output else signing_key_file()
    public = generate_key(path, overwrite=force)
    click.echo(f"signing key: {path}\npublic key (publish this): {public}")


@audit.command("public-key")
def public_key_command():
    """Print the public key that verifies tree heads."""
    click.echo(public_key(None).decode(), nl=False)


@audit.command()
@click.option("--watch", type=click.FloatRange(min=0.1), help="Keep following, polling every N seconds.")
def follow(watch):
    """Log new events into the Merkle tree and sign a tree head (the worker process)."""
    ledger = open_ledger()
    while True:
        ledger.caught_up_view()
        _, head = follow_log(ledger, quiet=watch is not None)
        if watch is None:
            size = head.tree_size if head else 0
            click.echo(f"tree size {size}, root {head.root_hash.hex() if head else '-'}")
            return
        time.sleep(watch)


@audit.command()
@click.option("--until", "until", help="ISO timestamp, e.g. 2026-03-01T12:00:00Z (UTC if no zone).")
@click.option("--until-position", type=click.IntRange(min=0), help="Last event position to include.")
@json_option
def replay(until, until_position, as_json):
    """Rebuild every balance from event 0 up to a moment, and print it."""
    from ledger.read.replay import replay as replay_log

    moment = _parse_moment(until) if until else None
    ledger = open_ledger()
    total = until_position or ledger.recorder.max_notification_id() or 0
    with progress_bar() as bar:
        task = bar.add_task("replaying events", total=total)
        state = replay_log(ledger, until_position=until_position, until=moment,
                           progress=lambda position: bar.update(task, completed=position))
    rows = state.balances()
    if as_json:
        click.echo(json.dumps({"position": state.position, "events": state.events,
                               "until": moment.isoformat() if moment else None,
                               "totals": state.totals_by_status(), "balances": rows}, indent=2))
        return
    emit(rows, False, ["account", "project", "vintage", "status", "quantity"],
         f"Balances after {state.events:,} events (position {state.position})")
    click.echo(", ".join(f"{status}: {quantity:,} t" for status, quantity in state.totals_by_status().items()))


@audit.command()
@click.option("--public-key", "public_key_path", type=click.Path(dir_okay=False), help="PEM public key (default: the published one).")
@click.option("--trusted-checkpoint", "trusted_paths", multiple=True, type=click.Path(dir_okay=False, exists=True), help="A checkpoint saved earlier (e.g. from /audit/checkpoint); today's log must extend it. Repeatable.")
@click.option("--follow", "follow_first", is_flag=True, help="Log and sign new events first (verify alone writes nothing).")
@click.option("--no-follow", is_flag=True, hidden=True, help="The default now; accepted for old scripts.")
@json_option
def verify(public_key_path, trusted_paths, follow_first, no_follow, as_json):
    """Recompute every hash, the Merkle roots and signatures, and the ledger's invariants.

    Read-only unless --follow. Fails when the store holds events but no signed checkpoint,
    when any signed root (stored, published in KAPOK_CHECKPOINT_LOG_FILE or trusted) is not
    what the events now stored give, and when a listing's counters disagree with its
    escrow and inventory accounts."""
    from market.read.listing_audit import verify_with_listings

    ledger = open_ledger()
    public = public_key(public_key_path)
    trusted = [(path, checkpoint) for path in trusted_paths
               for checkpoint in read_checkpoints(path, public)]
    if follow_first:
        follow_log(ledger)
    total = ledger.recorder.max_notification_id() or 0
    with progress_bar() as bar:
        task = bar.add_task("verifying events", total=total)
        report = verify_with_listings(ledger, public, trusted=trusted,
                                      progress=lambda position: bar.update(task, completed=position))
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        for problem in report.problems:
            click.echo(f"FAIL {problem}")
        first, last, count = report.unlogged
        if count:
            click.echo(f"note: positions {first}-{last} ({count} events) are not covered by any "
                       "signed checkpoint: inserted, or written since the last checkpoint")
        status = "OK" if report.ok else f"{len(report.problems)} problem(s)"
        click.echo(f"{status}: {report.events:,} events, {report.heads_checked:,} signed heads "
                   f"and {report.checkpoints_checked:,} checkpoints checked ({len(trusted)} "
                   f"trusted), latest checkpoint size {report.latest_checkpoint_size:,}")
    if not report.ok:
        raise AuditFailedError(f"verification failed: {len(report.problems)} problem(s), first: "
                               f"{report.problems[0]}")


def read_checkpoints(path: str, public_pem: bytes) -> list:
    """The checkpoints in a file (one or several notes), each signature checked against the
    public key. Raises CheckpointError naming the file."""
    from ledger.audit.checkpoint import Checkpoint, CheckpointError, NoteVerifier, split_notes
    from ledger.settings import KAPOK_LOG_ORIGIN

    origin = KAPOK_LOG_ORIGIN.read()
    verifier = NoteVerifier.of(origin, public_pem)
    notes = split_notes(Path(path).read_bytes())
    if not notes:
        raise CheckpointError(f"{path} holds no checkpoint")
    try:
        return [Checkpoint.parse(note, verifier, origin=origin) for note in notes]
    except CheckpointError as error:
        raise CheckpointError(f"trusted checkpoint {path}: {error}") from None


@audit.command()
@click.option("--size", type=click.IntRange(min=0), help="Tree size (default: the latest).")
@click.option("--output", type=click.Path(dir_okay=False, writable=True), help="Write it to a file (keep it: --trusted-checkpoint).")
def checkpoint(size, output):
    """Print a signed checkpoint (C2SP tlog-checkpoint note), the latest by default."""
    from ledger.audit.log import AuditLog
    from ledger.domain.errors import NotYetSignedError

    log = AuditLog(open_ledger())
    note = log.latest_checkpoint() if size is None else log.checkpoint(size)
    if note is None:
        raise NotYetSignedError("no checkpoint signed yet: run `kapok audit follow`")
    if output:
        Path(output).write_bytes(note)
        click.echo(f"written to {output}", err=True)
    else:
        click.echo(note.decode(), nl=False)


@audit.command("verifier-key")
def verifier_key_command():
    """Print the public key in signed-note form, <name>+<key ID>+<key>."""
    from ledger.audit.checkpoint import verifier_key
    from ledger.settings import KAPOK_LOG_ORIGIN

    click.echo(verifier_key(KAPOK_LOG_ORIGIN.read(), public_key(None)))


@audit.command("witness-key")
@click.option("--name", required=True, help="The witness's name, a schema-less URL such as auditor.example/witness.")
@click.option("--out", "output", required=True, type=click.Path(dir_okay=False), help="Private key file to create (kept by the witness alone).")
def witness_key(name, output):
    """Create a witness's Ed25519 key and print its verifier key (the log's operator adds it
    to KAPOK_WITNESS_KEYS)."""
    import os

    from ledger.audit.cosignature import WitnessSigningKey
    from ledger.audit.witness import WitnessStateError

    key = WitnessSigningKey.generate(name)
    try:
        descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise WitnessStateError(f"{output} exists; refusing to replace a witness key") from None
    with os.fdopen(descriptor, "w") as file:
        file.write(key.text)
    click.echo(key.verifier.vkey)


@audit.command()
@click.option("--log", "log_url", required=True, help="The log's address, e.g. https://registry.example.org.")
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False, exists=True), help="The witness's private key (`kapok audit witness-key`).")
@click.option("--state", "state_dir", required=True, type=click.Path(file_okay=False), help="Where the witness keeps the log's key and the last checkpoint it cosigned.")
@click.option("--log-key", help="The log's verifier key, <name>+<key ID>+<key> as /audit/verifier-key gives it, or a file holding it (default: the log's own, pinned at first contact).")
@click.option("--once", is_flag=True, help="One round, then exit.")
@click.option("--interval", default=60.0, show_default=True, type=click.FloatRange(min=0.1), help="Seconds between rounds.")
def witness(log_url, key_path, state_dir, log_key, once, interval):
    """Witness a log: cosign each checkpoint that extends the last one cosigned, and refuse,
    exiting 1, a fork or a rollback (run by an auditor, on a host of their own)."""
    from ledger.audit.cosignature import WitnessSigningKey
    from ledger.audit.witness import LogClient, LogUnreachableError, Witness, WitnessState

    if log_key and Path(log_key).is_file():
        log_key = Path(log_key).read_text(encoding="utf-8")
    key = WitnessSigningKey.parse(Path(key_path).read_text(encoding="utf-8"))
    witness = Witness(key, LogClient(log_url), WitnessState(Path(state_dir)))
    verifier = witness.log_verifier(log_key)
    while True:
        try:
            click.echo(witness.witness(verifier))
        except LogUnreachableError as error:
            if once:
                raise
            click.echo(f"witness: {error}; trying again in {interval:g} s", err=True)
        if once:
            return
        time.sleep(interval)


@audit.command()
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True), help="File to write (default: standard output).")
def export(fmt, output):
    """Stream every event with its position, leaf index, the bytes its leaf hashes and the
    fields read from them; JSON Lines end with the checkpoints and their consistency proofs."""
    from ledger.audit.export import write_export

    ledger = open_ledger()
    if output is None:
        write_export(ledger, sys.stdout, fmt)
        return
    total = ledger.recorder.max_notification_id() or 0
    with open(output, "w", encoding="utf-8", newline="") as file, progress_bar() as bar:
        task = bar.add_task(f"exporting {fmt}", total=total)
        count = write_export(ledger, file, fmt, progress=lambda p: bar.update(task, completed=p))
    click.echo(f"{count:,} events written to {output}", err=True)


@audit.command()
@click.argument("retirement_id")
@click.option("--output", type=click.Path(dir_okay=False, writable=True), help="Write the proof to a file.")
def prove(retirement_id, output):
    """Print a retirement's event, its inclusion proof and the signed tree head (JSON)."""
    from ledger.audit.proofs import retirement_proof

    ledger = open_ledger()
    ledger.caught_up_view()  # where the retirement's event stands in the log
    log, _ = follow_log(ledger)
    document = retirement_proof(ledger.ledger, log, retirement_id, public_key(None))
    _write_json(document, output)


@audit.command()
@click.option("--from", "size1", type=click.IntRange(min=0), required=True, help="Older tree size.")
@click.option("--to", "size2", type=click.IntRange(min=0), help="Newer tree size (default: latest).")
@click.option("--output", type=click.Path(dir_okay=False, writable=True))
def consistency(size1, size2, output):
    """Prove that an older signed tree head is a prefix of a newer one (JSON)."""
    from ledger.audit.proofs import consistency_document

    ledger = open_ledger()
    log, head = follow_log(ledger)
    size2 = head.tree_size if size2 is None and head else size2 or 0
    if size1 > size2:
        raise click.BadParameter(f"--from {size1} is larger than --to {size2}")
    _write_json(consistency_document(log, size1, size2, public_key(None)), output)


def _write_json(document: dict, output: str | None) -> None:
    text = json.dumps(document, indent=2, ensure_ascii=False)
    if output:
        Path(output).write_text(text + "\n", encoding="utf-8")
        click.echo(f"written to {output}", err=True)
    else:
        click.echo(text)


def _parse_moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO timestamp, e.g. 2026-03-01T12:00:00Z",
                                 param_hint="--until") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@audit.command()
@json_option
def heads(as_json):
    """List the signed tree heads (size, root, time), oldest first."""
    from ledger.audit.log import AuditLog

    rows = [head.as_dict() for head in AuditLog(open_ledger()).heads()]
    emit(rows, as_json, ["tree_size", "timestamp", "root_hash", "key_id"], "Signed tree heads")


def neutralised_row(cells) -> list[str]:
    """CSV cells safe to open in a spreadsheet (see ledger.audit.export)."""
    from ledger.audit.export import neutralise

    # Only text can be a formula: numbers (a refund's -1250) stay numbers.
    return [cell if isinstance(cell, (int, float)) and not isinstance(cell, bool)
            else neutralise("" if cell is None else str(cell)) for cell in cells]
