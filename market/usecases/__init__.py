"""The market's use cases, one module per area: each method loads, calls the domain and saves
through the store (``ledger.adapters.store``), the ledger's aggregates among the market's."""
