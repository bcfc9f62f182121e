"""doit's console reporter without the empty `<stdout>`/`<stderr>` sections after a failure.

A failing mfe action already printed one message naming the file, key, app or URL;
doit's default would follow it with a banner and two empty captured-output blocks.
"""

from __future__ import annotations

from doit.reporter import ConsoleReporter


class Reporter(ConsoleReporter):  # type: ignore[misc]
    desc = "console output; captured output after a failure only when there is some"

    def complete_run(self) -> None:
        for result in self.failures:
            task = result["task"]
            if not task.executed:
                continue
            for kind, shown_live in (("err", task.verbosity >= 1), ("out", task.verbosity >= 2)):
                text = "".join(getattr(a, kind) or "" for a in task.actions).strip()
                if text and (not shown_live or self.failure_verbosity):
                    self.write(f"{task.name} <std{kind}>:\n{text}\n")
        if self.runtime_errors:
            self.write("Execution aborted.\n" + "\n".join(self.runtime_errors) + "\n")
