"""What bench/ and tests/ share: builders, seeded stores, Kapok served as deployed, and the
order flow's HTTP client. Importing it needs neither bench/, tests/ nor the dev extras."""
