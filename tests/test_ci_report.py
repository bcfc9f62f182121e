"""The job summary of each kind of CI job (`mfe.ci.report.markdown`)."""

from __future__ import annotations

from mfe.ci.report import AppReport, CiReport, markdown


def test_a_shard_summary_names_its_job_and_never_says_nothing_to_publish() -> None:
    built = AppReport(affected=True, why=["apps/a/src/x.js"], cache="miss", tests="passed")
    built.size_bytes, built.live_bytes = 2500, 2000
    report = CiReport("prod", None, {"a": built}, extra={"mode": "shard=2/4"})
    summary = markdown(report)
    assert summary.startswith("### `doit ci env=prod shard=2/4` (no base")
    assert summary.rstrip().endswith("shard 2/4: built and cached")
    assert "Nothing to publish" not in summary
    assert "| a | yes | miss | 0.0 | passed | 0 | 2.5 kB | +0.5 kB | - |" in summary


def test_a_failure_is_shown_whole_in_a_code_block() -> None:
    error = "a is not in the build cache (s3://c/a)\nb is not in the build cache\n```\nnothing"
    report = CiReport("local", "main", {}, error=error, extra={"mode": "publish"})
    summary = markdown(report)
    assert summary.startswith("### `doit ci env=local publish` since `main`")
    assert f"**Failed:**\n\n````text\n{error}\n````\n" in summary
