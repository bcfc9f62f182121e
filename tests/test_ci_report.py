"""The job summary of each kind of CI job (`mfe.ci.report.markdown`)."""

from __future__ import annotations

from mfe.ci.report import NOT_SERVED, AppReport, CiReport, markdown


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


def test_vs_live_names_a_change_too_small_for_kilobytes_in_bytes() -> None:
    """A 1-byte difference is `+1 B`, not `+0.0 kB`; no difference is `same`."""
    rows = {}
    for name, size in (("same", 2000), ("one-more", 2001), ("one-less", 1999), ("grown", 2500)):
        app = AppReport(affected=True, why=[], cache="hit", tests="cached")
        app.size_bytes, app.live_bytes = size, 2000
        rows[name] = app
    summary = markdown(CiReport("local", None, rows, published=True, site_url="http://x/"))
    cells = {
        line.split(" | ")[0].removeprefix("| "): line.split(" | ")[7]
        for line in summary.splitlines()
        if line.startswith("| ") and not line.startswith(("| app ", "| ---"))
    }
    assert cells == {"same": "same", "one-more": "+1 B", "one-less": "-1 B", "grown": "+0.5 kB"}
    assert "0.0 kB" not in summary


def test_a_kept_app_whose_files_went_up_says_they_are_not_published() -> None:
    """A run that lost the race uploaded the app before its swap kept the later one live:
    the row and the kept-live line say those uploads serve nothing."""
    lost = AppReport(affected=True, why=["apps/a/src/x.js"], cache="miss", tests="passed")
    lost.uploaded = 2
    lost.notes = ["superseded: live from a later commit, kept live", NOT_SERVED]
    kept = AppReport(affected=True, why=["apps/b/src/y.js"], cache="hit", tests="cached")
    kept.notes = ["superseded: live from a later commit, kept live"]
    report = CiReport("local", "main", {"a": lost, "b": kept}, published=True, site_url="u")
    report.extra.update(unchanged=True, release="r1")
    summary = markdown(report)
    assert "| a | yes | miss | 0.0 | passed | 2 (not published) |" in summary
    assert "| b | yes | hit | 0.0 | cached | 0 |" in summary
    assert (
        "- **a** not published, superseded: live from a later commit, kept live "
        "(its 2 uploaded file(s) are served by no release)"
    ) in summary
    assert "- **b** not published, superseded: live from a later commit, kept live\n" in summary
