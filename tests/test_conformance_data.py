"""tests/conformance holds byte-exact upstream copies: every file is listed in SHA256SUMS with its hash."""

from __future__ import annotations

import hashlib

from tests.conformance.sync import sums
from tests.conftest import CONFORMANCE


def test_every_conformance_file_is_unchanged_and_listed() -> None:
    listed = (CONFORMANCE / "SHA256SUMS").read_text()
    assert sums(CONFORMANCE) == listed  # same files, same bytes (no edit, no CRLF conversion)
    assert len(listed.splitlines()) >= 40


def test_the_crlf_fixture_kept_its_line_endings() -> None:
    raw = (CONFORMANCE / "iotedgedev/assets/deployment.template.non_str_placeholder.json").read_bytes()
    assert b"\r\n" in raw
    assert hashlib.sha256(raw).hexdigest() in (CONFORMANCE / "SHA256SUMS").read_text()
