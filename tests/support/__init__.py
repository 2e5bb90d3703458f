"""Helpers shared by the tests (and by bench/ scripts): real servers started on loopback."""
