"""The tenant's copy of its Lucca directory: how it is filled, read and kept fresh (CONTRACT section 13)."""
