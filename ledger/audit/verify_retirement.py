"""Checks a Kapok retirement proof (/audit/proofs/<id>.json) against the C2SP checkpoint in it
and the registry's verifier key (/audit/verifier-key, given as text or a file), and prints
what the signed bytes say. Python 3.9+ and `cryptography`; Kapok itself is not needed.
    python verify_retirement.py PROOF.json KEY"""
import base64, hashlib, json, os, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
H = lambda *parts: hashlib.sha256(b"".join(parts)).digest()


def check(holds, why):  # not assert: python -O would drop the checks
    if not holds:
        raise ValueError(why)


def unwrap(v):  # eventsourcing's {"_type_": T, "_data_": D}; a serial block becomes its serial
    if isinstance(v, dict) and v.keys() == {"_type_", "_data_"}:
        d = v["_data_"]
        if v["_type_"] == "block":  # [vintage, batch, first, last, project, country]
            return f"KAP-{d[1]}-{d[2]}-{d[3]}-{d[4].replace('-', '').upper()}-{d[0]}-{d[5]}"
        return unwrap(d)
    if isinstance(v, dict):
        return {k: unwrap(x) for k, x in v.items()}
    return [unwrap(x) for x in v] if isinstance(v, list) else v


def verify(doc, key):
    name, key_id, raw = key.strip().split("+", 2)
    raw = base64.b64decode(raw)
    check(raw[:1] == b"\1" and H(name.encode(), b"\n", raw)[:4].hex() == key_id, "not a note key")
    text, _, signatures = doc["tree_head"]["checkpoint"].encode().partition(b"\n\n")
    origin, size, root = text.decode().split("\n")
    sigs = [base64.b64decode(s.split(" ")[2]) for s in signatures.decode().splitlines()
            if s.split(" ")[:2] == ["\u2014", name]]
    sig = next(s for s in sigs if s[:4].hex() == key_id and origin == name)  # else StopIteration
    Ed25519PublicKey.from_public_bytes(raw[1:]).verify(sig[4:], text + b"\n")  # or raises
    e, size = doc["event"], int(size)
    state = base64.b64decode(e["state"], validate=True)
    leaf = json.dumps({"originator_id": e["originator_id"], "state": e["state"], "topic": e["topic"],
                       "originator_version": e["originator_version"]}, sort_keys=True,
                      separators=(",", ":"))
    node, index, last = H(b"\0", leaf.encode()), e["leaf_index"], size - 1
    check(type(index) is int and 0 <= index <= last, "the leaf index is out of the tree")
    for sibling in map(bytes.fromhex, doc["inclusion_proof"]):  # RFC 9162, 2.1.3.2
        check(last > 0, "the inclusion proof is too long")
        if index & 1 or index == last:
            node = H(b"\1", sibling, node)
            while index and not index & 1:
                index, last = index >> 1, last >> 1
        else:
            node = H(b"\1", node, sibling)
        index, last = index >> 1, last >> 1
    check(last == 0 and node == base64.b64decode(root), "the event is not at that leaf")
    fields = unwrap(json.loads(state))
    shown = {"event": e["topic"].partition(":")[2], **fields}
    check(e.get("decoded", shown) == shown, "the decoded fields are not the signed state's")
    check(e["topic"].endswith(":Retirement.Recorded"), "the event is not a retirement")
    tonnes = sum(int(s.split("-")[3]) - int(s.split("-")[2]) + 1 for s in fields["blocks"])
    return (f"OK: retirement {fields['retirement_id']} for {fields['claim']['beneficiary']}: "
            f"{tonnes} tonnes, serials {', '.join(fields['blocks'])}; leaf {e['leaf_index']} "
            f"of {size} in log {origin}, checkpoint signed by {name}+{key_id}")


if __name__ == "__main__":
    key = sys.argv[2]
    try:
        print(verify(json.load(open(sys.argv[1])), open(key).read() if os.path.isfile(key) else key))
    except Exception as error:  # any failure, whatever its kind, is a refusal
        sys.exit(f"REFUSED: {type(error).__name__} {error}")
