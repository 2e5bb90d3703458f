"""The demo's summary line: the final line reports the rate over the whole stream, not the last 5 s."""

from __future__ import annotations

from edgegen.orchestration.up import UpSummary


def test_final_rate_spans_first_to_last_result() -> None:
    summary = UpSummary()
    summary._recent.extend([100.0, 101.0, 102.0, 103.0, 104.0])  # five results, one per second
    summary.total = 5
    summary.modules = {"inference": "running"}
    assert summary.overall_rate() == 1.0
    final = summary.line(final=True)
    assert final.startswith("[done] 5 results at the hub, 1.0 msg/s")
    assert "inference=running" in final


def test_no_rate_before_two_results() -> None:
    summary = UpSummary()
    summary.add("monitor", {"anomaly": True})
    assert summary.overall_rate() == 0.0
    assert summary.anomalies == 1
    assert summary.line().startswith("[summary] 1 results")
