"""The tenant's copy of its Lucca directory (CONTRACT section 13): how it is kept, and what its readers ask of it."""
