"""After a publish: load the site like a browser would and check every script, module
preload and stylesheet it references (status, content type, subresource integrity)."""

from __future__ import annotations

import base64
import functools
import hashlib
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from mfe.errors import MfeError
from mfe.threads import parallel

if TYPE_CHECKING:
    import httpx

EXPECTED_TYPE = {"script": "javascript", "modulepreload": "javascript", "stylesheet": "css"}


@dataclass(frozen=True)
class Asset:
    kind: str
    url: str
    integrity: str | None


class _AssetParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.assets: list[Asset] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script" and found.get("src"):
            self.assets.append(Asset("script", found["src"] or "", found.get("integrity")))
        if tag == "link" and found.get("href"):
            for rel in (found.get("rel") or "").lower().split():
                if rel in ("modulepreload", "stylesheet"):
                    self.assets.append(Asset(rel, found["href"] or "", found.get("integrity")))


def page_assets(html: str, page_url: str) -> list[Asset]:
    parser = _AssetParser()
    parser.feed(html)
    unique: dict[str, Asset] = {}  # a modulepreload and its script are one fetch
    for asset in parser.assets:
        url = urljoin(page_url, asset.url)
        unique.setdefault(url, Asset(asset.kind, url, asset.integrity))
    return list(unique.values())


def integrity_matches(integrity: str, body: bytes) -> bool:
    """SRI: any one of the space-separated `<alg>-<base64>` values must match."""
    for token in integrity.split():
        alg, _, expected = token.partition("-")
        if alg in ("sha256", "sha384", "sha512"):
            digest = base64.b64encode(hashlib.new(alg, body).digest()).decode()
            if digest == expected.split("?")[0]:
                return True
    return False


def check_once(site_url: str, timeout: float) -> list[str]:
    """Problems found (empty when the page and every asset are right)."""
    import httpx

    # Loading the CA bundle costs ~60 ms; a plain-http site (the emulator) never uses it.
    verify = site_url.startswith("https://")
    with httpx.Client(timeout=timeout, follow_redirects=True, verify=verify) as http:
        page = http.get(site_url)
        if page.status_code != 200:
            return [f"{site_url} answered {page.status_code}"]
        assets = page_assets(page.text, str(page.url))
        if not assets:
            return [f"{site_url} references no script or stylesheet"]
        # A browser fetches them in parallel too.
        found = parallel(8, [functools.partial(check_asset, http, asset) for asset in assets])
        return [problem for problem in found if problem]


def check_asset(http: httpx.Client, asset: Asset) -> str | None:
    response = http.get(asset.url)
    kind = response.headers.get("content-type", "")
    if response.status_code != 200:
        return f"{asset.url} answered {response.status_code}"
    if EXPECTED_TYPE[asset.kind] not in kind:
        return f"{asset.url} has content type {kind!r}"
    if asset.integrity and not integrity_matches(asset.integrity, response.content):
        return f"{asset.url} {INTEGRITY} {asset.integrity}"
    return None


class SmokeFailed(MfeError):
    """The site or an asset it references failed every attempt; `problems` says which
    URL and how (status, content type, integrity), one line each."""

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems


def smoke_check(site_url: str, *, attempts: int = 5, first_delay: float = 0.2) -> int:
    """Retry with backoff (0.2+0.4+0.8+1.6 s by default); raise naming the failing URL."""
    import httpx

    delay = first_delay
    problems: list[str] = []
    for attempt in range(attempts):
        try:
            problems = check_once(site_url, timeout=10)
        except httpx.HTTPError as exc:
            problems = [f"{site_url}: {exc.__class__.__name__}: {exc}"]
        if not problems:
            return attempt + 1
        if attempt + 1 < attempts:
            time.sleep(delay)
            delay *= 2
    raise failed(site_url, problems, VERIFY_ADVICE)


VERIFY_ADVICE = (
    "the files are uploaded; check the bucket and distribution, then run "
    "`doit publish --verify` (it lists the buckets and uploads whatever is missing)"
)
INTEGRITY = "does not match its integrity"


def failed(site_url: str, problems: list[str], advice: str) -> SmokeFailed:
    return SmokeFailed(
        f"smoke check failed for {site_url}:\n  " + "\n  ".join(problems) + "\n" + advice,
        problems,
    )


def after_repair(site_url: str, problems: list[str]) -> SmokeFailed:
    """The failure left once publish listed the buckets and uploaded what they lacked (what
    `--verify` does): suggesting `--verify` again would only repeat that."""
    if any(INTEGRITY in problem for problem in problems):
        advice = (
            "the buckets hold this checkout's build of the apps the page serves from it (listed "
            "and compared just now; uploading again cannot mend this): other bytes are served for "
            "these URLs than the page's integrity names (a CDN or proxy cache, or an object or the "
            "page changed in the bucket by hand); invalidate those paths or serve a known "
            "release again (`doit rollback`)"
        )
    else:
        advice = (
            "the buckets hold every file of this checkout's build (listed just now; "
            "`doit publish --verify` would find nothing to upload): check the bucket policy "
            "and the distribution, or serve a known release again (`doit rollback`)"
        )
    return failed(site_url, problems, advice)
