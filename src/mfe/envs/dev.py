"""The `dev` kind: what `doit serve` renders. Apps load from their dev servers on
127.0.0.1; there is nothing to provision, deploy or publish to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mfe.config import App, Environment, Project
from mfe.envs.outputs import Outputs
from mfe.errors import MfeError

if TYPE_CHECKING:
    from mfe.envs.backend import Log
    from mfe.envs.changes import Confirm
    from mfe.envs.session import Session


@dataclass
class DevBackend:
    project: Project
    env: Environment

    def _not_here(self) -> MfeError:
        return MfeError(
            f"environment '{self.env.name}' is what `doit serve` renders: nothing is published "
            "there (no releases, no previews); use 'local' or an AWS environment "
            "(`doit publish env=NAME`)"
        )

    def check(self, session: Session) -> None:
        raise self._not_here()

    def no_login(self) -> str | None:
        return str(self._not_here())

    def client_settings(self, service: str) -> dict[str, Any]:
        raise self._not_here()

    def client_hooks(self) -> tuple[Callable[[Any], None], ...]:
        raise self._not_here()

    def lost(self, exc: BaseException) -> str | None:
        raise self._not_here()

    def start(self) -> None:
        raise self._not_here()

    def ready(self, session: Session) -> Outputs:
        raise self._not_here()

    def existing(self, session: Session) -> Outputs:
        raise self._not_here()

    def deploy(self, session: Session, log: Log, confirm: Confirm | None = None) -> Outputs:
        raise MfeError(
            f"environment '{self.env.name}' (dev) has no infrastructure to deploy; "
            "`doit serve` needs none"
        )

    def destroy(self, session: Session, log: Log, confirm: Confirm) -> None:
        raise MfeError(f"environment '{self.env.name}' (dev) has no resources to destroy")

    def stored_outputs(self) -> Outputs | None:
        return None

    def app_url(self, app: App, outputs: Outputs | None) -> str:
        return f"http://127.0.0.1:{app.dev_port}/"

    def site_url(self, outputs: Outputs) -> str:
        return f"http://127.0.0.1:{self.env.port}/"

    def preview_url(self, outputs: Outputs, name: str) -> str:
        raise self._not_here()

    def conditional_writes(self) -> bool | None:
        raise self._not_here()

    def hint(self) -> str:
        return "run `doit serve` (the dev environment needs no resources)"

    def stop(self, session: Session, confirm: Confirm) -> str:
        return f"environment '{self.env.name}' runs no local AWS emulator; nothing to stop"
