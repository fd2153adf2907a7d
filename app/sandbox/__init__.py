"""Local stand-ins for the partner APIs (one module per partner) for the demo, e2e tests and benchmarks."""
