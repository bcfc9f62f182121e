"""HMAC-SHA256 signatures of build cache entries, keyed by the `MFE_CACHE_KEY` CI secret.

An entry's signature covers its scope (trusted or one pull request), app, input key and
the sha256 of its `asset-manifest.json`, which in turn pins every file's sha256: whoever
can write the bucket but lacks the secret cannot plant an entry a restore accepts, and an
entry signed for a pull request's prefix does not verify when copied to the shared one.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from mfe.errors import MfeError

SECRET_VAR = "MFE_CACHE_KEY"
MIN_SECRET_CHARS = 32
FORMAT = "mfe-cache-entry/1"

# S3 user metadata keys (sent as x-amz-meta-*, lower case on the wire).
SIGNATURE = "signature"
KEY_ID = "key-id"
MANIFEST_SHA256 = "manifest-sha256"
SIZE = "budget-bytes"
SIZE_SIGNATURE = "budget-signature"


def load_secret(environ: Mapping[str, str]) -> bytes | None:
    """The signing secret, or None when the variable is unset or empty."""
    value = environ.get(SECRET_VAR, "").strip()
    if not value:
        return None
    if len(value) < MIN_SECRET_CHARS:
        raise MfeError(
            f"{SECRET_VAR} is {len(value)} characters long: use at least {MIN_SECRET_CHARS} "
            "random characters (for example `openssl rand -hex 32`)"
        )
    return value.encode()


def key_id(secret: bytes) -> str:
    """A public fingerprint of the secret: tells 'signed with another key' from 'forged'."""
    return hmac.new(secret, b"mfe-cache-key-id", hashlib.sha256).hexdigest()[:16]


def _payload(scope: str, app: str, key: str, manifest_sha256: str) -> bytes:
    return f"{FORMAT}\nscope={scope}\napp={app}\nkey={key}\nmanifest={manifest_sha256}\n".encode()


def sign(secret: bytes, scope: str, app: str, key: str, manifest_sha256: str) -> dict[str, str]:
    """The metadata that makes an entry verifiable."""
    mac = hmac.new(secret, _payload(scope, app, key, manifest_sha256), hashlib.sha256)
    return {SIGNATURE: mac.hexdigest(), KEY_ID: key_id(secret), MANIFEST_SHA256: manifest_sha256}


def problem(
    secret: bytes, metadata: Mapping[str, str], scope: str, app: str, key: str
) -> str | None:
    """Why the entry's metadata does not prove we signed it for this scope/app/key, or None."""
    signature = metadata.get(SIGNATURE, "")
    manifest = metadata.get(MANIFEST_SHA256, "")
    if not signature:
        return "unsigned"
    if metadata.get(KEY_ID, "") != key_id(secret):
        return (
            f"signed with another {SECRET_VAR} (key id {metadata.get(KEY_ID) or 'none'}, "
            f"ours {key_id(secret)})"
        )
    expected = hmac.new(secret, _payload(scope, app, key, manifest), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return "bad signature"
    return None


def _size_payload(manifest_sha256: str, measure: str, size: int) -> bytes:
    return f"{FORMAT}\nmanifest={manifest_sha256}\nmeasure={measure}\nbytes={size}\n".encode()


def sign_size(secret: bytes, manifest_sha256: str, measure: str, size: int) -> dict[str, str]:
    """Metadata recording the app's budget size (`measure` names how it was measured).

    The size is a function of the files the manifest pins, so it is signed with the
    manifest's hash: a restore can take it instead of compressing the files again (gzip -9
    of 40 apps' entries was a third of the fan-in job's CPU). A changed `measure` (or a
    forged or missing value) does not verify, and the size is measured again.
    """
    mac = hmac.new(secret, _size_payload(manifest_sha256, measure, size), hashlib.sha256)
    return {SIZE: str(size), SIZE_SIGNATURE: mac.hexdigest()}


def signed_size(secret: bytes, metadata: Mapping[str, str], measure: str) -> int | None:
    """The size recorded by `sign_size` if it verifies against the entry's manifest hash."""
    try:
        size = int(metadata.get(SIZE, ""))
    except ValueError:
        return None
    payload = _size_payload(metadata.get(MANIFEST_SHA256, ""), measure, size)
    expected = hmac.new(secret, payload, hashlib.sha256).hexdigest()
    return size if hmac.compare_digest(expected, metadata.get(SIZE_SIGNATURE, "")) else None
