"""Business rules: what the connectors do, independent of HTTP and of the queue."""
