"""Generates a realistic ledger history fast: many accounts trading small lots of serials.

Real commands through the Ledger, but many independent transfers are saved per atomic save
(each touches its own pair of accounts), so a million events take minutes, not hours.
"""

from __future__ import annotations

import random
from typing import Callable

from ledger.application import Ledger
from ledger.domain.ids import public_id
from ledger.domain.projects import Vintage
from testbed.builders import INVENTORY, project_details

TRADERS = 200


def generate_log(ledger: Ledger, events: int, seed: int = 7, batch_transfers: int = 50,
                 progress: Callable[[int], None] | None = None) -> int:
    """Appends about ``events`` events (transfers of 1-20 t between traders); returns the
    number of events stored."""
    rng = random.Random(seed)
    ledger.register_project(project_details("VCS-1067"))
    ledger.add_vintage("VCS-1067", Vintage(2021))
    ledger.ensure_account(INVENTORY, "inventory", "Ecosphere+")
    names = [f"trader-{i:03d}" for i in range(TRADERS)]
    for name in names:
        ledger.ensure_account(name, "holding", name)
    ledger.issue("VCS-1067", 2021, 10_000_000)
    for name in names:  # everyone starts with a stock to trade
        ledger.transfer(INVENTORY, name, quantity=20_000)
    stored = ledger.recorder.max_notification_id()
    while stored < events:
        rng.shuffle(names)
        changed = []
        for sender_name, receiver_name in zip(names[0:batch_transfers * 2:2], names[1:batch_transfers * 2:2]):
            sender, receiver = ledger.get_account(sender_name), ledger.get_account(receiver_name)
            blocks = sender.pick(rng.randint(1, 20), None)
            transfer_id = public_id("KAP-TRF")
            sender.send(blocks, receiver.name, transfer_id)
            receiver.receive(blocks, sender.name, transfer_id)
            changed += [sender, receiver]
        ledger.store.save(*changed)
        stored = ledger.recorder.max_notification_id()
        if progress:
            progress(stored)
    return stored
