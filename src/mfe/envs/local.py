"""The `local` kind: the embedded moto emulator, provisioned through the API.

moto's CloudFormation cannot create CloudFront distributions, so the resources of
`infra/*.yaml` are made through the equivalent API calls (`mfe.envs.local_provision`),
idempotently: everything is found again by name or comment, and one command at a time
provisions on an emulator port, so the next finds what the previous one made.
A run where everything exists costs four requests (emulator probe, bucket list, app
client, distribution list): a resource deleted by hand is made again, not left to fail a
publish halfway.
The emulator is the one of this environment: its port, its `.mfe/<env>/` files.
Commands that only read what is published (`existing`) start and create nothing.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mfe.config import App, Environment, Project
from mfe.envs.emulator import (
    identity,
    port_locked,
    port_taken,
    probe,
    start_emulator,
    started_here,
    stop_emulator,
)
from mfe.envs.emulator_users import others, register, unrecorded
from mfe.envs.gone import FailFastWhenGone
from mfe.envs.local_lookup import bucket_names, find_provisioned, missing
from mfe.envs.local_provision import provision
from mfe.envs.outputs import (
    Outputs,
    base_url,
    checked_base_url,
    read_outputs,
    write_outputs,
)
from mfe.envs.stacks import Names, resource_names
from mfe.errors import MfeError, NothingPublished
from mfe.files import write_atomic

if TYPE_CHECKING:
    from mfe.envs.backend import Log
    from mfe.envs.changes import Confirm
    from mfe.envs.session import Session

PROVISIONING = "provisioning.json"
"""In `.mfe/<env>/` while a command provisions (the emulator's endpoint, the command's pid):
one left behind says that command was killed midway, so the next one finishes its work
(and says so) instead of taking the resources it did not make for deleted or lost."""

LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@dataclass
class LocalBackend:
    project: Project
    env: Environment
    started: bool = field(default=False, init=False)
    """This command started the emulator (`start`): it holds nothing yet."""
    _hold: ExitStack | None = field(default=None, init=False, repr=False)
    """Where `start` puts the port's provision lock if it starts the emulator (`ready`)."""
    _holding: bool = field(default=False, init=False, repr=False)
    """The last `start` took that lock (this command provisions the new emulator first)."""

    def check(self, session: Session) -> None:
        pass  # dummy credentials: nothing to check

    def client_settings(self, service: str) -> dict[str, Any]:
        return {**LOCAL_CREDENTIALS, "endpoint_url": self.endpoint}

    def client_hooks(self) -> tuple[Callable[[Any], None], ...]:
        hook = FailFastWhenGone.for_endpoint(self.endpoint)
        return () if hook is None else (hook,)

    def lost(self, exc: BaseException) -> str | None:
        """The emulator's state is gone when nothing listens on its port any more (the
        check its client hook makes): a re-run starts a new, empty one. None while the
        port answers (a dropped connection to a running emulator: its state is there)."""
        hook = FailFastWhenGone.for_endpoint(self.endpoint)
        if hook is None or not hook.gone():
            return None
        name = self.env.name
        return (
            f"the local AWS emulator no longer listens on port {hook.port} (`doit local_stop` "
            f"ran meanwhile, or it was killed: {exc}); its buckets and release history went "
            "with it (it kept them in memory), so nothing is published there any more; the "
            f"next `doit publish env={name}` starts a new one and uploads everything"
        )

    @property
    def endpoint(self) -> str:
        assert self.env.endpoint_url, "config gives a local environment its endpoint"
        return self.env.endpoint_url

    def start(self) -> None:
        now = start_emulator(self.project, self.env, self._hold)
        self.started = now or self.started
        self._holding = now and self._hold is not None

    def ready(self, session: Session) -> Outputs:
        """Start the emulator and provision whatever it lacks (cheap when nothing does)."""
        if self.env.domain is not None:
            print(
                f"note: [env.{self.env.name}] domain = {self.env.domain.name!r} is checked but "
                "ignored on the local emulator (the site stays at the emulator's URL); "
                "custom domains apply to AWS environments",
                file=sys.stderr,
            )
        with ExitStack() as held:  # the provision lock, when this call starts the emulator
            self._hold, self._holding = held, False
            try:
                self.start()
            finally:
                self._hold = None
            with self._lost_emulator("it starts the emulator and provisions it again"):
                return self._provisioned(session, self.started, self._holding)

    def existing(self, session: Session) -> Outputs:
        """What is provisioned on the running emulator, found without starting it or
        creating anything (`doit releases` after `doit destroy` must not make it again)."""
        port = self.env.port or 0
        state = probe(port)
        if state == "free":
            raise NothingPublished(
                f"no emulator runs for environment '{self.env.name}' (it keeps its state in "
                "memory): nothing is published; `doit publish` starts it"
            )
        if state == "other":
            raise port_taken(self.env, port)
        with self._lost_emulator("it finds what is published"):
            recorded = self._recorded_outputs()
            have = bucket_names(session.s3)
            if recorded is not None and recorded.apps[self.project.parent.name].bucket in have:
                return recorded  # as the outputs file says, as long as its releases are there
            names = resource_names(self.project, self.env)
            found = find_provisioned(session, names, have)
        if found is None:
            parent = names.buckets[self.project.parent.name]
            raise NothingPublished(_not_provisioned(self.env, parent, names, have))
        return found

    def _provisioned(self, session: Session, started: bool, holding: bool) -> Outputs:
        """`started`: this command started the emulator, so it holds nothing yet;
        `holding`: it holds the port's provision lock already (taken as it started it)."""
        names = resource_names(self.project, self.env)
        current = self._current_outputs(names)
        gone = missing(session, names, current) if current is not None else []
        marker = self.project.state_dir(self.env.name) / PROVISIONING
        if current is not None and not gone:
            marker.unlink(missing_ok=True)  # killed after writing the outputs: all was made
            self._register(current)
            return current
        assert self.env.port is not None, "config gives a local environment a default port"
        # Distribution comments and pool names are not unique: two commands provisioning at
        # once (of any checkout on this emulator) would each make what neither found.
        with nullcontext() if holding else port_locked(self.env.port, "provision"):
            # Looked at again under the lock: a command that held it meanwhile (commands at
            # once on a new emulator) may have provisioned it since the look above.
            current = self._current_outputs(names)
            gone = missing(session, names, current) if current is not None else []
            if current is not None and not gone:
                marker.unlink(missing_ok=True)
                self._register(current)
                return current
            # Under the lock: a marker left is no running command's, it is a killed one's.
            emulator = identity(self.env.port)
            left = _marked(marker, self.endpoint)
            if left is not None and not started and left.get("emulator") in (None, emulator):
                print(_finishing(self.env, marker), file=sys.stderr, flush=True)
            elif left is not None or (started and current is not None):  # a new emulator
                print(_new_emulator(self.env), file=sys.stderr, flush=True)
            elif current is not None:  # it had been provisioned on this port: some is gone
                said = _provisioning_again(self.env, gone, current)
                print(said, file=sys.stderr, flush=True)
            mark = {"endpoint": self.endpoint, "pid": os.getpid(), "emulator": emulator}
            write_atomic(marker, json.dumps(mark))
            outputs = provision(session, names)
            write_outputs(self.project, outputs)
            marker.unlink()
        self._register(outputs)
        return outputs

    def _register(self, outputs: Outputs) -> None:
        """Record this environment's buckets on its emulator (named by others' local_stop)."""
        buckets = [o.bucket for o in outputs.apps.values()]
        buckets += [outputs.cache_bucket] if outputs.cache_bucket else []
        register(self.env.port or 0, self.project.root, self.env.name, buckets)

    @contextmanager
    def _lost_emulator(self, again: str) -> Iterator[None]:
        """The emulator found (or started) a moment ago may be stopped before the requests
        that follow (`doit local_stop` in another terminal): say so, not botocore's error;
        `again`: what running the command again does."""
        from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

        try:
            yield
        except (EndpointConnectionError, ConnectionClosedError) as exc:
            raise MfeError(
                f"the local AWS emulator of environment '{self.env.name}' ({self.endpoint}) "
                f"stopped answering while this command used it ({exc}): `doit local_stop` "
                f"ran meanwhile, or it was killed; run the command again ({again})"
            ) from None

    def deploy(self, session: Session, log: Log, confirm: Confirm | None = None) -> Outputs:
        outputs = self.ready(session)
        log(f"local emulator ready; outputs in {self.project.outputs_file(self.env.name)}")
        return outputs

    def destroy(self, session: Session, log: Log, confirm: Confirm) -> None:
        """The project's buckets, distributions and user pool on the emulator, nothing else
        (another project or checkout may use the same emulator)."""
        from mfe.envs.teardown import destroy_local

        if probe(self.env.port or 0) != "moto":
            log(
                f"the emulator of environment '{self.env.name}' is not running; it kept its "
                "state in memory, so there is nothing left to delete"
            )
            self.project.outputs_file(self.env.name).unlink(missing_ok=True)
            return
        destroy_local(session, resource_names(self.project, self.env), confirm, log)

    def stored_outputs(self) -> Outputs | None:
        return read_outputs(self.project, self.env, self.hint())

    def app_url(self, app: App, outputs: Outputs | None) -> str:
        return checked_base_url(self.project, self.env, outputs, app.name)

    def site_url(self, outputs: Outputs) -> str:
        """The parent bucket's `index.html` (the emulator has no default root object)."""
        return base_url(self.env, outputs, self.project.parent.name) + "index.html"

    def preview_url(self, outputs: Outputs, name: str) -> str:
        """The page object itself: the emulator serves no index document."""
        return base_url(self.env, outputs, self.project.parent.name) + f"previews/{name}/index.html"

    def conditional_writes(self) -> bool | None:
        return None  # moto honours them; an endpoint override (SeaweedFS...) is probed

    def hint(self) -> str:
        return f"run `doit publish env={self.env.name}` again (it provisions the emulator)"

    def no_login(self) -> str | None:
        return None  # the provisioning makes the user pool

    def stop(self, session: Session, confirm: Confirm) -> str:
        """Stop the emulator this environment started; when other environments (of this
        checkout or others) keep state on it too, name them and ask `confirm` first.
        Buckets no environment recorded (made by hand) are named, not asked about."""
        port = self.env.port or 0
        losing: list[str] = []
        if started_here(self.project, self.env):
            names = resource_names(self.project, self.env)
            own = {*names.buckets.values(), *filter(None, [self.env.cache_bucket])}
            with self._lost_emulator("it finds the emulator stopped: nothing to stop"):
                have = bucket_names(session.s3)
            configured = set(self.project.envs)
            losing, removed = others(port, self.project.root, self.env.name, configured, have)
            question = (
                f"Stopping the local AWS emulator on port {port} also loses the state below "
                "(it keeps everything in memory). Stop it?"
            )
            if losing and not confirm(question, [f"  {what}" for what in losing]):
                raise MfeError(f"local_stop: nothing stopped; the emulator on port {port} runs on")
            losing += [*removed, *filter(None, [unrecorded(port, own, have)])]
        said = stop_emulator(self.project, self.env)
        return said + (f"; also lost: {'; '.join(losing)}" if losing else "")

    def _outputs_file(self) -> Outputs | None:
        """The outputs file as written, if it reads."""
        if not self.project.outputs_file(self.env.name).exists():
            return None
        try:
            return read_outputs(self.project, self.env, self.hint())
        except MfeError:
            return None

    def _recorded_outputs(self) -> Outputs | None:
        """The outputs file, if there is one that names the parent app (its URLs as they
        were written: an S3 endpoint reached through a proxy serves the same site)."""
        outputs = self._outputs_file()
        return outputs if outputs and self.project.parent.name in outputs.apps else None

    def _current_outputs(self, names: Names) -> Outputs | None:
        """The outputs file, if it describes this config's apps on this emulator port."""
        outputs = self._outputs_file()
        if outputs is None:
            return None
        same_apps = {a: o.bucket for a, o in outputs.apps.items()} == names.buckets
        same_port = outputs.endpoint_url == self.endpoint and outputs.auth is not None
        return outputs if same_apps and same_port else None


def _not_provisioned(env: Environment, parent: str, names: Names, have: set[str]) -> str:
    """Why nothing is published: no bucket at all, or the parent's (`parent`) is gone."""
    if not set(names.buckets.values()) & have:
        return (
            f"environment '{env.name}' is not provisioned: nothing is published; "
            "`doit publish` provisions it"
        )
    return (
        f"environment '{env.name}' lacks the parent app's bucket {parent} (deleted?), which "
        "holds the live pointer and the release history: nothing is published; `doit "
        "publish` makes it again and publishes everything"
    )


def _marked(marker: Path, endpoint: str) -> dict[str, Any] | None:
    """What a killed command left in `marker` while it provisioned the emulator at
    `endpoint` (not one on another port: the config's port changed since): its
    `emulator`, the start id of the emulator it provisioned (None: an older mfe's)."""
    try:
        left = json.loads(marker.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return left if isinstance(left, dict) and left.get("endpoint") == endpoint else None


def _finishing(env: Environment, marker: Path) -> str:
    """What a command says when it finishes the provisioning a killed one left (`marker`)."""
    return (
        f"local: finishing the provisioning of environment '{env.name}' on the emulator on "
        f"port {env.port} that an earlier command began and did not finish (it was stopped "
        f"or killed; it left {marker}): making what it had not made yet"
    )


def _new_emulator(env: Environment) -> str:
    """What a command says when it provisions an emulator started since this environment
    was (last) provisioned, or begun to be."""
    return (
        f"local: provisioning environment '{env.name}' on the new emulator (the stopped "
        "one kept its state in memory), so a publish uploads everything"
    )


def _provisioning_again(env: Environment, gone: list[str], had: Outputs) -> str:
    """Why the emulator lacks what the outputs file names: it restarted behind this
    checkout's back (it lost every bucket and the pool), or some resources were deleted
    (by hand): named."""
    assert had.auth is not None
    everything = [f"bucket {o.bucket}" for o in had.apps.values()]
    if set(everything) <= set(gone) and f"user pool {had.auth.user_pool_id}" in gone:
        return (
            f"local: the emulator on port {env.port} has lost its state (restarted); "
            "provisioning it again, empty, so a publish uploads everything"
        )
    emptied = [app for app, o in had.apps.items() if f"bucket {o.bucket}" in gone]
    uploads = (
        f"; `doit publish --verify` uploads the live files of {', '.join(emptied)} again "
        "(made again, empty: a plain publish trusts the live pointer, and only its smoke "
        "check notices)"
        if emptied
        else ""
    )
    return (
        f"local: environment '{env.name}' lacks {', '.join(gone)} on the emulator on port "
        f"{env.port} (deleted?); making them again{uploads}"
    )
