"""Kapok's carbon registry: projects, serial-numbered issuance, transfer, retirement."""
