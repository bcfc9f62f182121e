"""Which release a plain `doit rollback [app=NAME]` serves again: the history read as an
undo stack by content (the page and each app's version), not by release id.

Successive plain rollbacks walk back through the distinct contents served, skipping every
content a later rollback took off, whichever record serves it (it was rolled back for a
reason; `to=` still names it). A whole rollback takes off a release's whole content; an
app rollback takes off that app's version (`Live.took_off` with `rollback_app`), which no
later plain rollback, of the app or of the whole page, serves again. A publish in between
is new content, which the next rollback takes off before walking on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mfe.publish.pointer import Blob, Live

Content = tuple[Blob, tuple[tuple[str, str], ...]]


def content(record: Live) -> Content:
    """What a release serves: its page and each app's version. Releases are compared by
    it, not by id: a rollback's record serves again what an earlier record served."""
    return record.page, tuple(sorted((name, v.version) for name, v in record.apps.items()))


def serves(live: Live, target: Live, app: str | None) -> bool:
    """Whether `live` already serves what rolling back to `target` would (`to=` naming
    what a rollback interrupted after its swap made live): the same page and versions, or
    for `app`, the same version of it."""
    if app is not None:
        mine, theirs = live.apps.get(app), target.apps.get(app)
        return mine is not None and theirs is not None and mine.version == theirs.version
    versions = {name: v.version for name, v in live.apps.items()}
    return live.page == target.page and versions == {n: v.version for n, v in target.apps.items()}


def origin(known: list[int], read: Callable[[int], Live], record: Live, app: str | None) -> int:
    """The seq of the record whose content `record` serves again: through `rollback_of`
    to the first record of a chain of rollbacks of this kind (whole, or of `app`), as a
    rollback to a rollback's record restored what that one restored."""
    seq = record.seq
    while record.action == "rollback" and record.rollback_of and record.rollback_app in (None, app):
        earlier = [s for s in reversed(known) if s < seq and read(s).release == record.rollback_of]
        if not earlier:  # its record is missing: go on from here
            break
        seq = earlier[0]
        record = read(seq)
    return seq


@dataclass
class TakenOff:
    """What rollbacks took off, gathered while the history is read newest first (a
    rollback's record comes before the release it took off)."""

    by_release: dict[str, str | None] = field(default_factory=dict)
    """Release id -> the app a rollback took off of it (None: its whole content)."""
    contents: set[Content] = field(default_factory=set)
    versions: set[tuple[str, str]] = field(default_factory=set)
    """(app, version) pairs an app rollback took off."""

    def note(self, record: Live) -> None:
        """Learn what `record` took off (if a rollback), and what a newer rollback took
        off of `record`. Records older than mfe's `took_off` field took off nothing known."""
        if record.release in self.by_release:
            app = self.by_release[record.release]
            if app is None:
                self.contents.add(content(record))
            elif app in record.apps:
                self.versions.add((app, record.apps[app].version))
        if record.took_off:
            self.by_release[record.took_off] = record.rollback_app

    def has(self, record: Live, app: str | None) -> bool:
        """Whether serving `record` again (or `app` of it) would serve what a rollback took
        off: its whole content, or a version of one of its apps (of `app` only)."""
        if content(record) in self.contents:
            return True
        names = [app] if app is not None else list(record.apps)
        return any(
            (name, record.apps[name].version) in self.versions
            for name in names
            if name in record.apps
        )


@dataclass
class Choice:
    target: Live | None
    """The release to serve again; None: none."""
    skipped: Live | None = None
    """The newest earlier record serving something else that the undo-stack rule skipped
    (what a rollback took off): `to=` its seq still serves it."""


def walk(known: list[int], read: Callable[[int], Live], live: Live, app: str | None) -> Choice:
    """The newest record before the live one (before the original of what a rollback of the
    same kind restored, following `rollback_of` through rollbacks of rollbacks, so rolling
    back twice goes two releases back) that serves something else: another page or another
    version of any app (a release that changed only a fixed-URL file such as robots.txt
    keeps the page: its app's version differs), or another version of `app`; never what a
    rollback took off. Records are read newest first, only as needed."""
    anchor = origin(known, read, live, app)
    taken = TakenOff()
    taken.note(live)
    skipped: Live | None = None
    for seq in reversed([s for s in known if s < live.seq]):
        record = read(seq)
        taken.note(record)
        if not differs(live, record, app):
            continue
        if seq < anchor and not taken.has(record, app):
            return Choice(record, skipped)
        skipped = skipped or record
    return Choice(None, skipped)


def differs(live: Live, record: Live, app: str | None) -> bool:
    """Whether rolling back to `record` would change what is served (for `app`: `record`
    has another version of it)."""
    if app is None:
        return not serves(live, record, None)
    return app in record.apps and not serves(live, record, app)


def choose(
    known: list[int], read: Callable[[int], Live], live: Live, app: str | None
) -> Live | None:
    """The target of a plain rollback (`walk`), None when there is none."""
    return walk(known, read, live, app).target
