"""The k8s_worker: the only service that writes to the cluster."""
