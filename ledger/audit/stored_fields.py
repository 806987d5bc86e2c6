"""A stored event read from its own bytes, by the rule docs/AUDIT.md gives auditors.

What an export line or a proof shows beside the signed bytes is read from those bytes alone,
never from Kapok's domain classes, so that a verifier written from the docs can read the same
fields again and refuse a line whose shown fields were edited.
"""

from __future__ import annotations

import json

from ledger.domain.serials import SerialBlock

# eventsourcing's JSON transcoder stores a value it transcodes as {"_type_": T, "_data_": D}.
_WRAPPER = {"_type_", "_data_"}


def unwrapped(value):
    """The value with each transcoded value replaced by its data, a serial block by its
    serial number."""
    if isinstance(value, dict):
        if value.keys() == _WRAPPER:
            if value["_type_"] == "block":
                return SerialBlock.from_list(value["_data_"]).serial
            return unwrapped(value["_data_"])
        return {key: unwrapped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrapped(item) for item in value]
    return value


def stored_fields(topic: str, state: bytes) -> dict:
    """{"event", "timestamp", "fields"} of a stored event: the class named after the topic's
    colon, and the state's JSON object unwrapped, its timestamp apart. Raises ValueError if
    the state is not such an object."""
    try:
        decoded = unwrapped(json.loads(state))
    except (TypeError, ValueError):  # not JSON, or a serial block of the wrong shape
        raise ValueError("the state is not JSON Kapok could have written") from None
    if not isinstance(decoded, dict) or not isinstance(decoded.get("timestamp"), str):
        raise ValueError("the state is not a JSON object with a timestamp")
    timestamp = decoded.pop("timestamp")
    return {"event": topic.partition(":")[2], "timestamp": timestamp, "fields": decoded}
