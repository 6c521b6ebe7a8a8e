"""Signed firmware on the CSMS side: the release registry and what it trusts (FW-01..03)."""
