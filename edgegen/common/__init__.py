"""Primitives every area may use: SAS tokens and connection strings, certificates, loopback addresses."""
