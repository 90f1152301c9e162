"""Shipped suites (packaged as audit._suites)."""
