"""The Akros HTTP API: authenticates callers, validates and quota-checks their requests,
publishes commands on the event backbone and answers queries from the read model."""
