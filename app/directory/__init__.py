"""The tenant's copy of its Lucca directory (CONTRACT section 13): the store, the full sync, and what keeps it fresh."""
