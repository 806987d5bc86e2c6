"""Tamper evidence for the ledger: a Merkle tree over the event log, signed tree heads, proofs."""
