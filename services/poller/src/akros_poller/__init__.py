"""The poller: keeps auto-inference sized to the cluster's free capacity."""
