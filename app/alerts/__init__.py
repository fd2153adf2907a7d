"""Alerts (contract 14): channels, problems that open and close, and their delivery."""
