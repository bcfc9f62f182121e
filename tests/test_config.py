"""mfe.toml validation: every mistake is one error naming the file and the key."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mfe.config import load_project
from mfe.errors import ConfigError

from fixtures.config import config_value, emulator_port, set_config
from fixtures.repo import REPO, run_doit


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """mfe.toml, its [build] inputs (tools/) and the apps' package.json files only: enough
    for config loading."""
    shutil.copy(REPO / "mfe.toml", tmp_path / "mfe.toml")
    shutil.copytree(REPO / "tools", tmp_path / "tools")
    for package_json in REPO.glob("apps/*/package.json"):
        target = tmp_path / package_json.relative_to(REPO)
        target.parent.mkdir(parents=True)
        shutil.copy(package_json, target)
    return tmp_path


def edit(repo: Path, old: str, new: str) -> None:
    path = repo / "mfe.toml"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def error_of(repo: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_project(repo)
    return str(info.value)


def test_the_repo_config_loads(repo: Path) -> None:
    project = load_project(repo)
    assert list(project.apps) == ["mfe-parent", "accounts", "payments", "shared"]
    assert list(project.bundled_apps) == ["mfe-parent", "accounts", "payments"]
    assert project.apps["shared"].role == "shared"
    assert project.shared is not None and project.shared.packages == ("lit", "react", "react-dom")
    assert project.parent.name == "mfe-parent"
    assert project.apps["accounts"].element == "mfe-accounts"
    assert project.env("local").endpoint_url == f"http://127.0.0.1:{emulator_port(repo)}"
    assert project.env("prod").region == "eu-west-1"


def test_unknown_key_names_file_and_key(repo: Path) -> None:
    edit(repo, "dev_port = 5172", "dev_prot = 5172")
    message = error_of(repo)
    assert message.startswith("mfe.toml: key ") and str(repo) not in message, message
    assert "apps.accounts.dev_prot" in message


def test_wrong_type_names_key_and_value(repo: Path) -> None:
    edit(repo, "dev_port = 5172", 'dev_port = "5172"')
    message = error_of(repo)
    assert "apps.accounts.dev_port" in message and "must be int" in message


def test_duplicate_port(repo: Path) -> None:
    edit(repo, "dev_port = 5173", "dev_port = 5172")
    message = error_of(repo)
    assert "apps.payments.dev_port" in message and "5172" in message
    assert "apps.accounts.dev_port" in message


def test_missing_app_folder(repo: Path) -> None:
    shutil.rmtree(repo / "apps" / "payments")
    message = error_of(repo)
    assert "apps.payments" in message and "package.json" in message


def test_unknown_environment(repo: Path) -> None:
    with pytest.raises(ConfigError, match="unknown environment 'staging'"):
        load_project(repo).env("staging")


def test_a_misspelled_environment_names_the_one_meant(repo: Path) -> None:
    with pytest.raises(ConfigError, match="unknown environment 'prdo'") as info:
        load_project(repo).env("prdo")
    assert "did you mean 'prod'?" in str(info.value)
    with pytest.raises(ConfigError, match="unknown environment 'PROD'") as info:
        load_project(repo).env("PROD")  # difflib finds no match for another case
    assert "did you mean 'prod'?" in str(info.value)


def test_a_misspelled_local_table_names_the_one_meant(repo: Path) -> None:
    """`[env.locla]` is of kind 'aws' by default: its `port` is refused as an AWS key."""
    set_config(repo, "env.locla.port", 4999)
    message = error_of(repo)
    assert "key 'env.locla.port' means nothing for an environment of kind 'aws'" in message
    assert "did you mean [env.local]?" in message
    set_config(repo, "env.locla.kind", "aws")  # an AWS environment on purpose: no guess
    assert "did you mean" not in error_of(repo)


def test_invalid_toml(repo: Path) -> None:
    (repo / "mfe.toml").write_text("[project\nname = 1\n")
    assert "invalid TOML" in error_of(repo)


def test_doit_reports_config_errors_without_traceback(repo: Path) -> None:
    import subprocess
    import sys

    shutil.copy(REPO / "dodo.py", repo / "dodo.py")
    edit(repo, 'role = "parent"', 'role = "host"')
    result = subprocess.run(
        [sys.executable, "-m", "doit", "publish"], cwd=repo, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "apps.mfe-parent.role" in result.stderr
    assert "Traceback" not in result.stderr


def doit_error(repo: Path, *args: str, file: str = "mfe.toml") -> str:
    """Run `doit ARGS` in `repo`; assert exit 2 with one line of error, naming `file`
    relative to `repo` (as every other message names a project file), and no traceback."""
    import subprocess
    import sys

    shutil.copy(REPO / "dodo.py", repo / "dodo.py")
    result = subprocess.run(
        [sys.executable, "-m", "doit", *args], cwd=repo, capture_output=True, text=True
    )
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 2, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if "error" in line]
    assert len(errors) == 1, output
    assert f" {file}: " in errors[0] and str(repo) not in errors[0], errors[0]
    return errors[0]


def doit(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    shutil.copy(REPO / "dodo.py", repo / "dodo.py")
    return subprocess.run(
        [sys.executable, "-m", "doit", *args], cwd=repo, capture_output=True, text=True
    )


def listed(output: str) -> dict[str, str]:
    """`doit list`'s lines: task name -> its doc."""
    return dict(line.split(maxsplit=1) for line in output.splitlines())


BROKEN = [  # a syntax error names its line (tomllib's "(at line N, column M)"), others the key
    ("[project]", "[project", "mfe.toml: invalid TOML: ", "(at line {line}, column 9)"),
    ("dev_port = 5172", "dev_prot = 5172", "mfe.toml: key 'apps.accounts.dev_prot' ", ""),
    ("dev_port = 5172", 'dev_port = "5172"', "mfe.toml: key 'apps.accounts.dev_port' ", ""),
]


@pytest.mark.parametrize(("old", "new", "error", "where"), BROKEN)
def test_list_and_help_describe_every_task_while_mfe_toml_is_broken(
    repo: Path, old: str, new: str, error: str, where: str
) -> None:
    """That is when users reach for `--help`: every task is listed with its doc and
    variables, the per-app subtasks left out, and the error told once on stderr."""
    working = listed(doit(repo, "list").stdout)
    where = where.format(line=(repo / "mfe.toml").read_text().splitlines().index(old) + 1)
    edit(repo, old, new)
    result = doit(repo, "list")
    assert result.returncode == 0, result.stdout + result.stderr
    assert listed(result.stdout) == working
    told = result.stderr.splitlines()
    assert len(told) == 2 and told[0].startswith(f"mfe: error: {error}"), result.stderr
    assert where in told[0] and "Traceback" not in result.stderr
    assert "every task refuses to run until that is fixed" in told[1]
    assert listed(doit(repo, "list", "--all").stdout) == working  # no build:<app> subtasks
    help_publish = doit(repo, "help", "publish")
    assert help_publish.returncode == 0 and help_publish.stderr == result.stderr
    assert help_publish.stdout.startswith(f"publish  {working['publish']}\n")
    assert "env=NAME" in help_publish.stdout and "--prune" in help_publish.stdout
    assert "--port" in doit(repo, "help", "serve").stdout


@pytest.mark.parametrize("command", ["build", "publish", "serve", "shell", "plan", "info"])
def test_commands_that_need_mfe_toml_still_refuse_while_it_is_broken(
    repo: Path, command: str
) -> None:
    edit(repo, "dev_port = 5172", "dev_prot = 5172")
    line = doit_error(repo, command)
    assert "key 'apps.accounts.dev_prot'" in line


def test_list_describes_the_tasks_while_an_apps_package_json_is_broken(repo: Path) -> None:
    (repo / "apps" / "payments" / "package.json").write_text("{")
    result = doit(repo, "list")
    assert result.returncode == 0 and "publish" in listed(result.stdout), result.stderr
    assert result.stderr.startswith("mfe: error: apps/payments/package.json: invalid JSON")
    doit_error(repo, "build", file="apps/payments/package.json")


def test_described_tasks_refuse_to_run(repo: Path) -> None:
    """A task of the listing never runs on the stand-in project, even if doit ran it."""
    from doit.exceptions import TaskError
    from doit.loader import load_tasks
    from doit.task import Stream

    from mfe.config import defaults_only
    from mfe.tasks import build
    from mfe.tasks.described import described

    error = ConfigError("mfe.toml: invalid TOML: here")
    project = defaults_only(repo)
    creators = described(build.tasks(project, project.env("local")), error)
    (install,) = [task for task in load_tasks(creators) if task.name == "install"]
    failure = install.execute(Stream(0))
    assert isinstance(failure, TaskError) and "mfe.toml: invalid TOML: here" in str(failure)
    assert not (repo / "node_modules").exists()


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('name = "mfe-demo"', 'name = "Mfe Demo!"', "project.name"),
        ('name = "mfe-demo"', 'name = "demo-"', "project.name"),
        ('name = "mfe-demo"', f'name = "{"x" * 50}"', "project.name"),
        ("[env.prod]", "[env.Prod]", "env.Prod"),
        ('stack_prefix = "mfe-demo-prod"', 'stack_prefix = "9lives"', "env.prod.stack_prefix"),
        ('element = "mfe-payments"', 'element = "mfe-accounts"', "apps.payments.element"),
    ],
)
def test_config_errors_exit_2_with_one_line_naming_the_key(
    repo: Path, old: str, new: str, key: str
) -> None:
    edit(repo, old, new)
    line = doit_error(repo, "build")
    assert f"key '{key}'" in line


@pytest.mark.parametrize(
    ("key", "same_as"),
    [("env.local.port", "apps.accounts.dev_port"), ("apps.payments.dev_port", "env.local.port")],
)
def test_a_dev_port_equal_to_the_emulator_port_exits_2_naming_the_key(
    repo: Path, key: str, same_as: str
) -> None:
    set_config(repo, key, config_value(repo, same_as))
    line = doit_error(repo, "build")
    assert "key 'env.local.port'" in line


def test_a_long_project_name_is_checked_with_the_environment_prefix(repo: Path) -> None:
    # 41 + len("-local-mfe-parent") = 58 fits; "-prod-mfe-parent" fits too, but a longer
    # environment name pushes the bucket name past S3's 63 characters.
    edit(repo, 'name = "mfe-demo"', f'name = "{"p" * 41}"')
    load_project(repo)
    (repo / "mfe.toml").write_text(
        (repo / "mfe.toml").read_text().replace("[env.prod]", "[env.production-eu]")
    )
    message = error_of(repo)
    assert "key 'project.name'" in message and "production-eu" in message
    assert "63" in message


def test_every_generated_name_of_the_repo_config_is_valid(repo: Path) -> None:
    from mfe.envs.naming import bucket_problem, stack_problem
    from mfe.envs.stacks import resource_names

    project = load_project(repo)
    for env in project.envs.values():
        names = resource_names(project, env)
        assert all(bucket_problem(b) is None for b in names.buckets.values())
        assert all(stack_problem(s) is None for s in names.hosting_stacks.values())
    assert bucket_problem("a" * 64) and bucket_problem("ab") and bucket_problem("a_b-c")
    assert bucket_problem("192.168.1.1") and bucket_problem("xn--abc")
    assert stack_problem("1abc") and stack_problem("a_b") and not stack_problem("a-B1")


def test_budgets_are_sizes_with_units(repo: Path) -> None:
    edit(repo, "dev_port = 5172", 'dev_port = 5172\nbudget = "250 kB"')
    edit(repo, "dev_port = 5173", 'dev_port = 5173\nbudget = "1.5 MiB"')
    project = load_project(repo)
    assert project.apps["accounts"].budget == 250_000
    assert project.apps["payments"].budget == int(1.5 * 1024 * 1024)
    assert project.apps["mfe-parent"].budget is None
    edit(repo, 'budget = "250 kB"', 'budget = "250 kilobytes"')
    message = error_of(repo)
    assert "apps.accounts.budget" in message and "250 kilobytes" in message


def test_trusted_refs_are_branches_or_tags_never_pull_requests(repo: Path) -> None:
    path = repo / "mfe.toml"
    base = path.read_text()
    path.write_text(base + '\n[ci]\ntrusted_refs = ["main", "refs/tags/v*"]\n')
    assert load_project(repo).ci.trusted_refs == ("refs/heads/main", "refs/tags/v*")
    for bad, problem in [
        ('["refs/pull/*"]', "pull-request refs"),
        ('["refs/*"]', "pull-request refs"),
        ("[]", "is empty"),
        ('["refs/remotes/origin/main"]', "refs/heads/"),
        ('["my branch"]', "invalid git ref"),
    ]:
        path.write_text(base + f"\n[ci]\ntrusted_refs = {bad}\n")
        message = error_of(repo)
        assert "ci.trusted_refs" in message and problem in message, message


def test_shared_module_of_an_unlisted_package(repo: Path) -> None:
    edit(repo, '"react-dom/client"]', '"react-dom/client", "preact"]')
    message = error_of(repo)
    assert message.startswith("mfe.toml: key ") and str(repo) not in message, message
    assert "shared.modules[5]" in message and "'preact'" in message


def test_shared_wrong_type_and_unknown_key(repo: Path) -> None:
    edit(repo, 'packages = ["lit", "react", "react-dom"]', 'packages = "lit"')
    assert "shared.packages" in error_of(repo) and "must be list" in error_of(repo)
    edit(repo, 'packages = "lit"', 'packages = ["lit", "react", "react-dom"]\nmodule = []')
    assert "shared.module" in error_of(repo) and "not a known setting" in error_of(repo)


def test_shared_dev_port_clash(repo: Path) -> None:
    edit(repo, "dev_port = 5174", "dev_port = 5173")
    message = error_of(repo)
    assert "shared.dev_port" in message and "apps.payments.dev_port" in message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("env.prod.urls.acounts", "https://accounts.example.com/"),  # a typo of an app's name
        ("env.prod.port", 4567),  # an AWS environment listens on no port
        ("env.dev.endpoint_url", "http://127.0.0.1:9000"),  # `doit serve` talks to no AWS
        ("env.dev.stack_prefix", "mfe-demo-dev"),
        ("env.local.stack_prefix", "mfe-demo-local"),  # the emulator has no stacks
        ("env.local.endpoint_url", "http://127.0.0.1:9000"),  # the emulator is on `port`
        ("env.prod.region", ""),
        ("publish.max_deletes", -1),
        ("publish.workers", 99_999_999_999),  # one pooled connection each, made up front
    ],
)
def test_env_and_publish_settings_that_would_be_ignored_or_misread_exit_2_naming_the_key(
    repo: Path, key: str, value: object
) -> None:
    set_config(repo, key, value)
    line = doit_error(repo, "build")
    assert f"key '{key}'" in line


def test_an_endpoint_url_on_a_local_kind_environment_exits_2_naming_the_key(repo: Path) -> None:
    """The emulator is started on `port`: an endpoint elsewhere would get its calls."""
    set_config(repo, "env.qa.kind", "local")
    set_config(repo, "env.qa.endpoint_url", "http://127.0.0.1:9000")
    line = doit_error(repo, "build")
    assert "key 'env.qa.endpoint_url'" in line and "kind 'local'" in line


def test_urls_of_every_app_and_the_shared_modules_load(repo: Path) -> None:
    set_config(repo, "env.prod.urls.accounts", "https://accounts.example.com/")
    set_config(repo, "env.prod.urls.shared", "https://cdn.example.com/shared/")
    set_config(repo, "publish.max_deletes", 0)  # prune may delete nothing
    project = load_project(repo)
    assert project.env("prod").urls == {
        "accounts": "https://accounts.example.com/",
        "shared": "https://cdn.example.com/shared/",
    }


def test_a_byte_that_is_not_utf8_in_mfe_toml_exits_2_naming_its_line(repo: Path) -> None:
    path = repo / "mfe.toml"
    text = path.read_bytes()
    path.write_bytes(text.replace(b'region = "eu-west-1"', b'region = "eu-west-1\xe9"'))
    line = doit_error(repo, "build")
    number = text[: text.index(b'region = "eu-west-1"')].count(b"\n") + 1
    assert f"line {number}" in line and "UTF-8" in line


@pytest.mark.parametrize(
    ("scripts", "key"),
    [(None, "'scripts'"), (["build"], "'scripts'"), ({"build": None}, "'scripts.build'")],
)
def test_package_json_scripts_that_are_not_command_strings_exit_2_naming_the_key(
    repo: Path, scripts: object, key: str
) -> None:
    import json

    path = repo / "apps" / "payments" / "package.json"
    package = json.loads(path.read_text())
    path.write_text(json.dumps({**package, "scripts": scripts}))
    line = doit_error(repo, "build", file="apps/payments/package.json")
    assert f"key {key}" in line


def test_an_app_name_too_long_for_a_bucket_name_is_blamed_not_the_project_name(
    repo: Path,
) -> None:
    app = "a" * 50  # <project>-local-<app>: 65 characters
    (repo / "apps" / app).mkdir()
    (repo / "apps" / app / "package.json").write_text('{"scripts": {"build": "true"}}')
    line = doit_error(repo, "build")
    assert f"key 'apps.{app}'" in line and "project.name" not in line
    assert f"at most {63 - len('mfe-demo-local-')} characters" in line


@pytest.mark.parametrize("path", ["tools/nope.mjs", "tools"])
def test_a_build_input_that_is_no_file_exits_2_naming_the_key(repo: Path, path: str) -> None:
    inputs = [*config_value(repo, "build.inputs"), path]
    set_config(repo, "build.inputs", inputs)
    line = doit_error(repo, "build")
    assert f"key 'build.inputs[{len(inputs) - 1}]'" in line and repr(path) in line


def add_app(repo: Path, name: str) -> None:
    (repo / "apps" / name).mkdir()
    (repo / "apps" / name / "package.json").write_text('{"scripts": {"build": "true"}}')


def test_an_app_whose_bucket_is_the_build_cache_bucket_exits_2_naming_the_app(
    repo: Path,
) -> None:
    """<project>-<env>-build-cache is the environment's default cache bucket: an app of
    that name would host its site there (and `--prune` would delete cache entries)."""
    add_app(repo, "build-cache")
    line = doit_error(repo, "build")
    assert "key 'apps.build-cache'" in line
    assert "'mfe-demo-local-build-cache'" in line and "build cache bucket" in line
    assert "rename the app" in line
    set_config(repo, "env.local.cache_bucket", "mfe-demo-ci-cache")  # every env: its own
    set_config(repo, "env.prod.cache_bucket", "mfe-demo-ci-cache")  # (shared) cache bucket
    assert "build-cache" in load_project(repo).apps


def test_a_cache_bucket_that_is_an_apps_bucket_exits_2_naming_the_cache_bucket(
    repo: Path,
) -> None:
    set_config(repo, "env.prod.cache_bucket", "mfe-demo-local-accounts")  # another env's too
    line = doit_error(repo, "build")
    assert "key 'env.prod.cache_bucket'" in line
    assert "hosting bucket of app 'accounts' in environment 'local'" in line


def test_environments_and_apps_whose_names_make_one_bucket_exit_2_naming_the_app(
    repo: Path,
) -> None:
    """`prod` with app `eu-accounts` and `prod-eu` with app `accounts` would both publish
    into mfe-demo-prod-eu-accounts."""
    add_app(repo, "eu-accounts")
    set_config(repo, "env.prod-eu.region", "eu-central-1")
    line = doit_error(repo, "build")
    assert "key 'apps.eu-accounts'" in line and "'mfe-demo-prod-eu-accounts'" in line
    assert "app 'accounts' in environment 'prod-eu'" in line


@pytest.mark.parametrize(
    "url",
    [
        "localhost:4566",
        "htp://127.0.0.1:4566",
        "",
        "http://",
        "http://127.0.0.1:4566/s3",
        "http://127.0.0.1:4566?region=x",
        "http://127.0.0.1:99999",
        "http://user:secret@127.0.0.1:9000",
    ],
)
def test_an_endpoint_url_that_is_not_an_http_base_url_exits_2_naming_the_key(
    repo: Path, url: str
) -> None:
    set_config(repo, "env.prod.endpoint_url", url)
    line = doit_error(repo, "build")
    assert "key 'env.prod.endpoint_url'" in line and repr(url) in line


def test_an_endpoint_url_loads_without_its_trailing_slash(repo: Path) -> None:
    set_config(repo, "env.prod.endpoint_url", "https://s3.example.test:8443/")
    assert load_project(repo).env("prod").endpoint_url == "https://s3.example.test:8443"


@pytest.mark.parametrize(
    ("old", "new", "named", "meant"),
    [
        ("keep_releases = 5", "keep_release = 5", "publish.keep_release", "publish.keep_releases"),
        ("[publish]", "[pubish]", "pubish", "publish"),
        ("[project]", "[projet]", "projet", "project"),  # not 'project.name is required'
    ],
)
def test_a_misspelled_key_stops_doit_saying_which_it_meant(
    repo: Path, old: str, new: str, named: str, meant: str
) -> None:
    """As with a misspelled variable (`evn=prod`), the error names the key it likely meant,
    not only the list of known ones."""
    shutil.copy(REPO / "dodo.py", repo / "dodo.py")
    edit(repo, old, new)
    result = run_doit(repo, "publish", check=False)
    assert result.returncode == 2, result.stdout
    expected = f"key '{named}' is not a known setting (did you mean '{meant}'? known here:"
    assert expected in result.stdout, result.stdout
    assert "Traceback" not in result.stdout


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("AWS_PROFILE", "nosuchprofile", "AWS profile 'nosuchprofile' (AWS_PROFILE)"),
        ("AWS_MAX_ATTEMPTS", "abc", "AWS_MAX_ATTEMPTS='abc'"),
        ("AWS_MAX_ATTEMPTS", "0", "AWS_MAX_ATTEMPTS='0'"),
    ],
)
@pytest.mark.parametrize("env", ["local", "prod"])
def test_aws_settings_in_the_environment_that_botocore_refuses_name_the_variable(
    repo: Path, monkeypatch: pytest.MonkeyPatch, env: str, variable: str, value: str, named: str
) -> None:
    """They came as botocore tracebacks (ProfileNotFound, ValueError), also for `local`."""
    from mfe.envs.session import Session, _botocore_session

    monkeypatch.setenv(variable, value)
    _botocore_session.cache_clear()  # botocore reads the profile once per session
    try:
        session = Session(load_project(repo), env)
        with pytest.raises(ConfigError, match=named.replace("(", r"\(").replace(")", r"\)")):
            session.client("s3")
    finally:
        _botocore_session.cache_clear()


@pytest.mark.parametrize(("folder", "suggested"), [("My App", "my-app"), ("Pay", "pay")])
def test_an_app_folder_that_is_no_app_name_is_blamed_not_a_key(
    repo: Path, folder: str, suggested: str
) -> None:
    """The element key the user never wrote was blamed (`apps.My App.element`)."""
    (repo / "apps" / folder).mkdir()
    (repo / "apps" / folder / "package.json").write_text('{"scripts": {"build": "true"}}')
    with pytest.raises(ConfigError) as refused:
        load_project(repo)
    message = str(refused.value)
    assert message.startswith(f"apps/{folder}/: an app's folder name") and "element" in message
    assert f"rename the folder, e.g. to apps/{suggested}/" in message and "key" not in message


def test_an_apps_table_that_is_no_app_name_is_refused_as_such(repo: Path) -> None:
    (repo / "x").mkdir()
    (repo / "x" / "package.json").write_text("{}")
    with (repo / "mfe.toml").open("a") as toml:
        toml.write('\n[apps."../x"]\nrole = "fragment"\n')
    with pytest.raises(ConfigError, match=r'\[apps\."\.\./x"\] is not an app\'s name'):
        load_project(repo)


def test_two_apps_with_one_package_name_exit_2_naming_both_files(repo: Path) -> None:
    """An app folder copied (`cp -r apps/payments apps/billing`) keeps the package name:
    `npm install` would fail ("multiple workspaces with the same name"), and `doit` said
    to run it."""
    shutil.copytree(repo / "apps/payments", repo / "apps/billing")
    line = doit_error(repo, "build", file="apps/billing/package.json")
    assert '"name" is "payments", as in apps/payments/package.json' in line
    assert 'rename it ("name": "billing")' in line


@pytest.mark.parametrize(
    ("region", "named"),
    [
        ('"eu-westt-1"', "is 'eu-westt-1', which is not an AWS region (did you mean 'eu-west-1'?"),
        ('"eu-west-1 "', "is 'eu-west-1 ', which is no region name"),
    ],
)
def test_a_region_aws_does_not_have_stops_doit_in_one_line(
    repo: Path, region: str, named: str
) -> None:
    """A misspelled region retried for ~23 s, then an EndpointConnectionError traceback; one
    with a space was botocore's InvalidRegionError traceback. Checked offline (botocore's
    list), before any request."""
    edit(repo, 'region = "eu-west-1"', f"region = {region}")
    line = doit_error(repo, "infra", "env=prod")
    assert f"key 'env.prod.region' {named}" in line, line


def test_a_store_of_its_own_takes_any_region_name(repo: Path) -> None:
    """An S3-compatible store behind `endpoint_url` names its own regions (R2: 'auto')."""
    with (repo / "mfe.toml").open("a") as toml:
        toml.write('\n[env.r2]\nregion = "auto"\nendpoint_url = "https://r2.example.com"\n')
    assert load_project(repo).env("r2").region == "auto"
    edit(repo, 'region = "auto"', 'region = "au to"')
    assert "key 'env.r2.region' is 'au to', which is no region name" in error_of(repo)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("no-cache\r\nX-Evil: 1", "holds '\\r'"),  # botocore refused it mid-publish
        ("max-age=\u00fc", "holds '\u00fc'"),  # S3 dropped the header without a word
        ("max-age=", "has 'max-age='"),
        ("no-cache; max-age=5", "has 'no-cache; max-age=5'"),
    ],
)
def test_a_cache_control_value_that_is_no_header_value_exits_2_naming_the_key(
    repo: Path, value: str, problem: str
) -> None:
    set_config(repo, "publish.cache_control", [{"glob": "*.html", "value": value}])
    line = doit_error(repo, "plan")
    assert f"key 'publish.cache_control[0].value' is {value!r}, which {problem}" in line, line


def test_cache_control_values_with_quoted_lists_and_empty_elements_load(repo: Path) -> None:
    value = 'private="set-cookie, x-user", max-age=60, , must-revalidate'
    set_config(repo, "publish.cache_control", [{"glob": "*.html", "value": value}])
    assert load_project(repo).publish.cache_control == (("*.html", value),)


def test_a_long_value_is_echoed_shortened(repo: Path) -> None:
    """A 5000-character project name was echoed twice, ~10 kB of error."""
    edit(repo, 'name = "mfe-demo"', f'name = "{"x" * 5000}"')
    line = doit_error(repo, "build")
    assert "key 'project.name'" in line and "(5000 characters)" in line
    assert len(line) < 600, len(line)


def test_an_apps_table_of_non_ascii_name_is_shown_as_written(repo: Path) -> None:
    with (repo / "mfe.toml").open("a", encoding="utf-8") as toml:
        toml.write('\n[apps."\u00fcn\u00ef"]\n')
    assert '[apps."\u00fcn\u00ef"] is not an app\'s name' in error_of(repo)


@pytest.mark.parametrize(
    "element",
    [
        "mfe-accounts><script>alert(1)</script",
        "mfe-acc ounts",
        "1-accounts",
        "-accounts",
        "mfe-accounts!",
        "font-face",
        "annotation-xml",
    ],
)
def test_an_element_that_is_no_valid_custom_element_name_exits_2_naming_the_key(
    repo: Path, element: str
) -> None:
    set_config(repo, "apps.accounts.element", element)
    line = doit_error(repo, "build")
    assert f"key 'apps.accounts.element' is {element!r}, which is" in line, line


@pytest.mark.parametrize("element", ["mfe-acc.ounts_2", "x-\u00fc", "math-\u03b1"])
def test_custom_element_names_the_html_spec_allows_load(repo: Path, element: str) -> None:
    set_config(repo, "apps.accounts.element", element)
    assert load_project(repo).apps["accounts"].element == element


def test_an_mfe_toml_with_a_byte_order_mark_loads(repo: Path) -> None:
    """Notepad saves one; tomllib said `Invalid statement (at line 1, column 1)`."""
    path = repo / "mfe.toml"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_project(repo).name == "mfe-demo"


def test_an_mfe_toml_that_is_a_folder_exits_2(repo: Path) -> None:
    (repo / "mfe.toml").unlink()
    (repo / "mfe.toml").mkdir()
    line = doit_error(repo, "build")
    assert "mfe.toml: is a folder, not a file" in line, line
