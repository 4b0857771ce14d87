"""The monitor: watches the cluster read-only and publishes its capacity."""
