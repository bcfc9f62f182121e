"""Tables for the pure decision functions: each row is one input and the decision it must get.

The end-to-end tests show these decisions inside a publish or a dev server; the tables
pin each rule (and its edge) on its own, so a change of rule names the row it breaks.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mfe.build.manifest import authored_segments, is_fingerprinted
from mfe.publish.history import new_release_id
from mfe.publish.invalidate import MAX_WILDCARDS, collapse
from mfe.publish.local import IMMUTABLE_CACHE, LocalFile
from mfe.publish.plan import online_copy, present
from mfe.publish.pointer import AppVersion, Blob, Live
from mfe.publish.remote import RemoteObject
from mfe.publish.stack import choose
from mfe.serve.server import safe_path

# ------------------------------------------------------------------ is_fingerprinted


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("main-ABCD1234.js", True),  # esbuild [name]-[hash]: letters and digits
        ("chunk-QWERTYUI.js", True),  # esbuild base32 hash without a digit
        ("main.3f9a2b1c.js", True),  # webpack/CRA [name].[contenthash:8]
        ("index-a1B2c3D4e5.js", True),  # Vite
        ("vendor.12345678.js", True),  # digits only: still a hex hash
        ("main-deadbeef.js", True),  # a hex word cannot be told from a hash
        ("main-ABCD1234.js.map", True),  # its source map is as immutable as the script
        ("assets/chunks/app-ABCD1234.css", True),  # the folder does not matter
        ("main.js", False),
        ("index.html", False),
        ("favicon.svg", False),
        ("asset-manifest.json", False),  # an 8-letter word, not a hash
        ("payments-app.js", False),
        ("main-Abcdefgh.js", False),  # mixed-case letters only: a word
        ("ABCD1234-main.js", False),  # a hash must follow '-' or '.'
        ("main-ABC123.js", False),  # shorter than 8 characters
        ("main-ABCD1234", False),  # must be followed by an extension
    ],
)
def test_is_fingerprinted(name: str, expected: bool) -> None:
    assert is_fingerprinted(name) is expected


# The app's own files, as a build copies them from public/: their names carry no content hash.
AUTHORED = authored_segments(
    [
        "apps/web/public/hero-1920x1080.webp",
        "apps/web/public/og-image-1200x630.png",
        "apps/web/public/img/photo-20240101.jpg",
        "apps/web/src/main.js",
    ]
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("hero-1920x1080.webp", False),  # copied under the name its author gave it
        ("og-image-1200x630.png", False),
        ("img/photo-20240101.jpg", False),
        ("photo-20240101.jpg.map", False),  # the folder and a suffix change nothing
        ("main-ABCD1234.js", True),  # the bundler's hash: no source is named so
        ("assets/hero-1920x1080-QWERTYUI.webp", True),  # an authored part plus the bundler's
        ("report-20250101.pdf", True),  # a hash-like part no source name has: by name only
    ],
)
def test_authored_hash_like_names_are_not_fingerprints(name: str, expected: bool) -> None:
    assert is_fingerprinted(name, AUTHORED) is expected


# ------------------------------------------------------------------ collapse


def under(folder: str, count: int) -> list[str]:
    return [f"{folder}/f{i:04d}.js" for i in range(count)]


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        ([], []),
        (["/index.html"], ["/index.html"]),
        (["/b.html", "/a.html", "/a.html"], ["/a.html", "/b.html"]),  # sorted, deduplicated
        (under("/img", 9), under("/img", 9)),  # below the threshold: each path
        (under("/img", 10), ["/img/*"]),  # ten under one folder: a wildcard
        ([*under("/a/b", 10), "/a/c.js"], ["/a/c.js", "/a/b/*"]),  # only the crowded folder
        (under("", 12), under("", 12)),  # the root folder is never /*-collapsed
        ([*under("/img", 10), "/index.html"], ["/index.html", "/img/*"]),
        (
            [p for i in range(MAX_WILDCARDS) for p in under(f"/d{i:02d}", 10)],
            [f"/d{i:02d}/*" for i in range(MAX_WILDCARDS)],  # at the wildcard limit
        ),
        (
            [p for i in range(MAX_WILDCARDS + 1) for p in under(f"/d{i:02d}", 10)],
            ["/*"],  # one wildcard too many: everything
        ),
        ([f"/p{i}" for i in range(3000)], sorted(f"/p{i}" for i in range(3000))),
        ([f"/p{i}" for i in range(3001)], ["/*"]),  # past CloudFront's 3,000 paths
        (  # sent URL-encoded, as browsers request them (CloudFront refuses raw ones)
            ["/café x?.txt", "/a+b(1)~.txt", "/100%.txt", "/a#b.txt"],
            ["/100%25.txt", "/a%23b.txt", "/a+b(1)~.txt", "/caf%C3%A9%20x%3F.txt"],
        ),
        (under("/日本", 10), ["/%E6%97%A5%E6%9C%AC/*"]),
    ],
    ids=lambda value: f"{len(value)} paths" if isinstance(value, list) else None,
)
def test_collapse(paths: list[str], expected: list[str]) -> None:
    assert collapse(paths) == expected


# ------------------------------------------------------------------ present (upload diff)

MD5, OTHER = "0" * 32, "f" * 32
MULTIPART = "1" * 32 + "-3"


def local(**changes: str) -> LocalFile:
    fields = {
        "sha256": "a" * 64,
        "md5": MD5,
        "etag": MD5,
        "content_type": "text/javascript; charset=utf-8",
        "cache_control": "public, max-age=31536000, immutable",
    }
    fields.update(changes)
    return LocalFile(
        app="a", key="main.js", path=Path("main.js"), size=10, immutable=True, **fields
    )


def remote(etag: str) -> RemoteObject:
    return RemoteObject(key="main.js", etag=etag, size=10)


@pytest.mark.parametrize(
    ("file", "remote_object", "expected"),
    [
        (local(), None, False),  # not in the bucket
        (local(), remote(MD5), True),  # same md5 ETag
        (local(etag=MULTIPART), remote(MULTIPART), True),  # same multipart ETag
        (local(etag=MULTIPART), remote(MD5), True),  # uploaded whole by another tool
        (local(), remote(OTHER), False),  # other bytes
    ],
)
def test_present(file: LocalFile, remote_object: RemoteObject | None, expected: bool) -> None:
    assert present(file, remote_object) is expected


@pytest.mark.parametrize(
    ("immutable", "expected"),
    [(True, "main.js"), (False, "_ca/aaaaaaaaaaaaaaaaaaaa/main.js")],
)
def test_online_copy_is_content_addressed_unless_fingerprinted(
    immutable: bool, expected: str
) -> None:
    from dataclasses import replace

    copy = online_copy(replace(local(), immutable=immutable, cache_control="no-cache"))
    assert copy.key == expected
    assert copy.cache_control == ("no-cache" if immutable else IMMUTABLE_CACHE)


# ------------------------------------------------------------------ new_release_id

NOW = datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (None, "20260102T030405Z-abcdef1"),
        ("20260102T030404Z-1234567", "20260102T030405Z-abcdef1"),  # an earlier release
        ("20260102T030405Z-1234567", "20260102T030406Z-abcdef1"),  # same second: one later
        ("20260102T040000Z-1234567", "20260102T040001Z-abcdef1"),  # a clock behind the latest
        ("20251231T235959Z-1234567", "20260102T030405Z-abcdef1"),
    ],
)
def test_new_release_id(after: str | None, expected: str) -> None:
    made = new_release_id("abcdef1234567890", after, now=NOW)
    assert made == expected
    assert after is None or made > after  # ids sort in served order too


# ------------------------------------------------------------------ rollback target


def history(*rows: tuple[str, str, str | None]) -> tuple[list[int], Callable[[int], Live]]:
    """(release, page content[+parent version], rollback_of) rows, oldest first -> seqs
    and a reader. `A+r1`: page A, the parent app at version r1 (robots.txt r1, say). A
    rollback row took off the row before it, as a whole rollback does."""

    def apps(content: str) -> dict[str, AppVersion]:
        _, _, version = content.partition("+")
        return {"mfe-parent": AppVersion(version, None, "", [], {})} if version else {}

    made = {
        seq: Live(
            seq=seq,
            release=rid,
            created="",
            apps=apps(content),
            page=Blob(content.partition("+")[0], "", 0, "", ""),
            action="rollback" if of else "publish",
            rollback_of=of,
            took_off=rows[seq - 2][0] if of else None,
        )
        for seq, (rid, content, of) in enumerate(rows, start=1)
    }
    return sorted(made), made.__getitem__


def stepped_back(steps: int, after: int = 16) -> list[tuple[str, str, str | None]]:
    """x1..x`after` published (r1..), then `steps` plain rollbacks, each to the one before."""
    published = [(f"r{n}", f"x{n}", None) for n in range(1, after + 1)]
    back = [(f"r{after + n}", f"x{after - n}", f"r{after - n}") for n in range(1, steps + 1)]
    return [*published, *back]


# alice: v1..v4, rollback (v3), rollback (v2); bob publishes p1; alice rolls back (v2)
TESTER = [("r1", "v1", None), ("r2", "v2", None), ("r3", "v3", None), ("r4", "v4", None),
          ("r5", "v3", "r3"), ("r6", "v2", "r2"), ("r7", "v2p1", None), ("r8", "v2", "r6")]  # fmt: skip
# x16 stepped back to x8 (r24), a publish of another app (r25), a rollback of it (r26)
STEPPED = [*stepped_back(8), ("r25", "x8p1", None), ("r26", "x8", "r24")]
# r4 is `to=r1`, r5 a publish, r6 a rollback of it to r4: r6 serves r1's content again
CHAINED = [("r0", "Z", None), ("r1", "A", None), ("r2", "B", None), ("r3", "C", None),
           ("r4", "A", "r1"), ("r5", "D", None), ("r6", "A", "r4")]  # fmt: skip


@pytest.mark.parametrize(
    ("rows", "current", "expected"),
    [
        ([("r1", "A", None), ("r2", "B", None)], 2, "r1"),
        ([("r1", "A", None)], 1, None),  # nothing before the first release
        ([("r1", "A", None), ("r2", "B", None), ("r3", "B", None)], 3, "r1"),  # same page
        ([("r1", "A", None), ("r2", "A", None)], 2, None),  # nothing different to go back to
        # r3 rolled back to r1's page: the next rollback goes before r1, not back to r2
        ([("r0", "Z", None), ("r1", "A", None), ("r2", "B", None), ("r3", "A", "r1")], 4, "r0"),
        ([("r1", "A", None), ("r2", "B", None), ("r3", "C", None)], 2, "r1"),  # later ignored
        # same page, another file of an app (robots.txt): one release back, not none
        ([("r1", "A+x", None), ("r2", "A+y", None), ("r3", "A+z", None)], 3, "r2"),
        # ... nor the last release with another page
        ([("r1", "B+x", None), ("r2", "A+x", None), ("r3", "A+y", None)], 3, "r2"),
        ([("r1", "B+x", None), ("r2", "A+y", None), ("r3", "A+y", None)], 3, "r1"),  # same
        # v3 came off with r5 (r6 took it off): not back to r3, which serves it too
        (TESTER, 8, "r1"),
        (STEPPED, 26, "r7"),  # not x15 (r15), which r18 took off as r17
        (CHAINED, 7, "r0"),  # before r1, not r2 (which r4 skipped)
    ],
)
def test_rollback_target(
    rows: list[tuple[str, str, str | None]], current: int, expected: str | None
) -> None:
    known, read = history(*rows)
    target = choose(known, read, read(current), None)
    assert (target.release if target else None) == expected


# ------------------------------------------------------------------ safe_path


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("safe")
    root = base / "dist"
    (root / "sub").mkdir(parents=True)
    (root / "main-ABCD1234.js").write_text("x")
    (root / "sub" / "chunk.js").write_text("x")
    (root / "a b.js").write_text("x")
    (root / ".env").write_text("secret")
    (base / "secret.txt").write_text("secret")
    (root / "out.js").symlink_to(base / "secret.txt")
    (root / "inside.js").symlink_to("sub/chunk.js")
    return root


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/main-ABCD1234.js", "main-ABCD1234.js"),
        ("/main-ABCD1234.js?v=1#top", "main-ABCD1234.js"),  # query and fragment ignored
        ("/sub/chunk.js", "sub/chunk.js"),
        ("/a%20b.js", "a b.js"),  # percent-decoded
        ("/inside.js", "sub/chunk.js"),  # a symlink that stays inside
        ("/out.js", None),  # a symlink out of the folder
        ("/../secret.txt", None),
        ("/sub/../main-ABCD1234.js", None),  # no dot segments at all
        ("/%2e%2e/secret.txt", None),
        ("/..%2fsecret.txt", None),  # encoded separator
        ("/..%5csecret.txt", None),
        ("/..\\secret.txt", None),
        ("/.env", None),  # dotfiles
        ("/sub", None),  # directories
        ("/sub/", None),
        ("/", None),
        ("//main-ABCD1234.js", None),  # empty segment
        ("/%00", None),
        ("/%ff", None),  # not UTF-8
        ("/missing.js", None),
        ("main-ABCD1234.js", None),  # not absolute
    ],
)
def test_safe_path(dist: Path, raw: str, expected: str | None) -> None:
    found = safe_path(dist, raw)
    assert found == ((dist / expected).resolve() if expected else None)
