"""What differs between kinds of environment, behind one small interface.

Each kind has one module (`mfe.envs.local`, `mfe.envs.aws`, `mfe.envs.dev`) with one
backend class (the `aws` kind two: `mfe.envs.store` when `endpoint_url` names an
S3-compatible store, which has buckets only); everything else asks `backend_for(project, env)` instead of testing
`env.kind`. A new environment-specific behaviour is one more method here and in each
backend, never a new branch elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from mfe.config import App, Environment, Project
from mfe.envs.dev import DevBackend
from mfe.envs.local import LocalBackend
from mfe.envs.store import aws_backend

if TYPE_CHECKING:
    from mfe.envs.changes import Confirm
    from mfe.envs.outputs import Outputs
    from mfe.envs.session import Session

Log = Callable[[str], None]


class Backend(Protocol):
    project: Project
    env: Environment

    def check(self, session: Session) -> None:
        """Fail early with a clear message when the environment cannot be talked to."""

    def client_settings(self, service: str) -> dict[str, Any]:
        """Extra boto3 client arguments for `service` (endpoint, credentials)."""

    def client_hooks(self) -> tuple[Callable[[Any], None], ...]:
        """Picklable callables given each new client (the local emulator's: a request whose
        emulator is gone fails at once, not after the standard retries)."""

    def lost(self, exc: BaseException) -> str | None:
        """What a command says of a connection lost mid-command (`exc`) when the endpoint's
        state went with it (the local emulator no longer listens: it kept everything in
        memory); None when running the command again goes on from what it did."""

    def start(self) -> None:
        """Make the API endpoint answer (cheap when it already does)."""

    def ready(self, session: Session) -> Outputs:
        """Make the environment ready to publish to; its outputs."""

    def existing(self, session: Session) -> Outputs:
        """The outputs of what is there, for a command that reads what is published or
        takes part of it back (releases, rollback, preview_rm): it starts and creates
        nothing; `NothingPublished` when nothing can be published there yet."""

    def deploy(self, session: Session, log: Log, confirm: Confirm | None = None) -> Outputs:
        """`doit infra`: create or update the resources and write the outputs; `confirm`
        is asked before a change that replaces or removes a bucket, distribution or pool."""

    def destroy(self, session: Session, log: Log, confirm: Confirm) -> None:
        """`doit destroy`: list what goes, ask `confirm` (the env's name typed back), delete."""

    def stored_outputs(self) -> Outputs | None:
        """The outputs as last written (None when the kind has none)."""

    def app_url(self, app: App, outputs: Outputs | None) -> str:
        """Where the browser loads `app` from."""

    def site_url(self, outputs: Outputs) -> str:
        """The URL a publish prints last."""

    def preview_url(self, outputs: Outputs, name: str) -> str:
        """Where the preview `name` (`previews/NAME/` of the parent site) is browsed."""

    def conditional_writes(self) -> bool | None:
        """Whether its S3 store honours If-Match / If-None-Match (None: probe it once)."""

    def hint(self) -> str:
        """What to run when a resource (bucket, outputs) is missing."""

    def no_login(self) -> str | None:
        """Why the environment has no login, so no user pool for `doit user_add`; None
        when it has one (made by `doit infra`, or by the local provisioning)."""

    def stop(self, session: Session, confirm: Confirm) -> str:
        """`doit local_stop`: stop what runs locally for it; one line saying what happened.
        `confirm` is asked first when stopping it loses other environments' state too."""


BACKENDS: dict[str, Callable[[Project, Environment], Backend]] = {
    "local": LocalBackend,
    "aws": aws_backend,  # AWS itself, or an S3-compatible store (`endpoint_url`)
    "dev": DevBackend,
}


def backend_for(project: Project, env: Environment | str) -> Backend:
    """The backend of `env`'s kind."""
    env = project.env(env)
    return BACKENDS[env.kind](project, env)
