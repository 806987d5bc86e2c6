"""Kapok's market: listings, quotes, orders, payments and proceeds."""
