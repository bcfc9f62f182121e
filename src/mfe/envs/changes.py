"""What a CloudFormation change set will do, shown before it runs, and the questions asked
before anything destructive (a replaced or removed bucket, distribution or user pool; a
whole environment torn down).

Interactive runs ask on the terminal (Ctrl-D answers no); `--yes` answers for CI; a run
without a terminal and without `--yes` is refused with a message saying so, never guessed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Protocol

from mfe.errors import MfeError

GUARDED_TYPES = frozenset(
    {"AWS::S3::Bucket", "AWS::CloudFront::Distribution", "AWS::Cognito::UserPool"}
)
"""Resources whose replacement or removal loses data, URLs or users."""


class Confirm(Protocol):
    def __call__(self, question: str, lines: list[str], expected: str = "yes") -> bool:
        """Asked with a question and the lines it is about; True to go ahead."""
        ...


@dataclass(frozen=True)
class Change:
    action: str
    """add, modify, replace, replace? (CloudFormation: conditional) or remove."""
    resource: str
    resource_type: str

    @property
    def destructive(self) -> bool:
        return self.action in ("replace", "replace?", "remove") and (
            self.resource_type in GUARDED_TYPES
        )

    def line(self) -> str:
        return f"  {self.action:<8} {self.resource} ({self.resource_type})"


def changes_of(described: dict[str, Any]) -> list[Change]:
    """The resource changes of a DescribeChangeSet answer."""
    found = []
    for item in described.get("Changes", []):
        change = item.get("ResourceChange", {})
        action = str(change.get("Action", "?")).lower()
        replacement = change.get("Replacement")
        if action == "modify" and replacement == "True":
            action = "replace"
        elif action == "modify" and replacement == "Conditional":
            action = "replace?"
        found.append(
            Change(action, change.get("LogicalResourceId", "?"), change.get("ResourceType", "?"))
        )
    return found


def confirmer(yes: bool, rerun: str) -> Confirm:
    """`yes`: always go ahead; a terminal: ask; otherwise refuse, naming `rerun` (the command
    with `--yes`)."""

    def confirm(question: str, lines: list[str], expected: str = "yes") -> bool:
        if yes:
            return True
        if not sys.stdin or not sys.stdin.isatty():
            listed = ":\n" + "\n".join(lines) if lines else ""  # none: shown already
            raise MfeError(
                f"{question.rstrip('?')}: refused, there is no terminal to ask on; "
                f"run `{rerun}` to go ahead{listed}"
            )
        if lines:
            print("\n".join(lines), flush=True)
        try:
            answer = input(f"{question} Type '{expected}' to go ahead: ")
        except EOFError:  # Ctrl-D (or input closed): no, and the caller's message on a line
            print(flush=True)
            return False
        return answer.strip() == expected

    return confirm
