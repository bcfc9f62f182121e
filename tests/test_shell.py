"""The shell page: real app builds, rendered per environment, parsed (never grepped)."""

from __future__ import annotations

import base64
import difflib
import hashlib
import json
import re
import shutil
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mfe.build.manifest import read_manifest, write_manifest
from mfe.config import Project, load_project
from mfe.envs.cloudformation import outputs_from_stacks
from mfe.envs.outputs import AppOutputs, AuthOutputs, Outputs, write_outputs
from mfe.errors import MfeError
from mfe.shell import render_shell, shell_context

from fixtures.repo import REPO, executed_tasks, link_copy, run_doit, up_to_date_tasks

APPS = ["mfe-parent", "accounts", "payments"]
ELEMENTS = {"mfe-parent": "mfe-parent", "accounts": "mfe-accounts", "payments": "mfe-payments"}
DEV_PORTS = {"mfe-parent": 5171, "accounts": 5172, "payments": 5173}
SHARED_PORT = 5174
HOSTED = [*APPS, "shared"]  # the shared modules are hosted like an app
CLOUDFRONT = {name: f"d{index}abc.cloudfront.net" for index, name in enumerate(HOSTED, 1)}
SHARED_SPECIFIERS = ["lit", "react", "react-dom", "react-dom/client", "react/jsx-runtime"]
PROD_COGNITO = "https://cognito-idp.eu-west-1.amazonaws.com/"


@dataclass
class Page:
    """What the browser would see: tags in order, the config JSON, the mount template."""

    tags: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    config_text: str = ""
    importmap_text: str = ""
    title: str = ""
    mount: list[str] = field(default_factory=list)

    def all(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [
            a
            for t, a in self.tags
            if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    @property
    def config(self) -> dict[str, object]:
        data: dict[str, object] = json.loads(self.config_text)
        return data

    @property
    def importmap(self) -> dict[str, dict[str, object]]:
        data: dict[str, dict[str, object]] = json.loads(self.importmap_text)
        return data

    @property
    def csp(self) -> dict[str, list[str]]:
        (meta,) = self.all("meta", http_equiv="Content-Security-Policy")
        directives = [d.split() for d in meta["content"].split(";")]
        return {d[0]: d[1:] for d in directives}

    @property
    def scripts(self) -> list[dict[str, str]]:
        return [a for a in self.all("script", type="module")]

    @property
    def preloads(self) -> list[dict[str, str]]:
        return self.all("link", rel="modulepreload")


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.page = Page()
        self.stack: list[str] = []
        self.in_config = self.in_title = self.in_map = False
        self.mount_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.page.tags.append((tag, values))
        if self.mount_depth:
            self.page.mount.append(tag)
        if tag == "template" and "data-mfe-mount" in values:
            self.mount_depth = 1
        self.in_config = tag == "script" and values.get("id") == "mfe-config"
        self.in_map = tag == "script" and values.get("type") == "importmap"
        self.in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        if tag == "template":
            self.mount_depth = 0
        self.in_config = self.in_title = self.in_map = False

    def handle_data(self, data: str) -> None:
        if self.in_config:
            self.page.config_text += data
        if self.in_map:
            self.page.importmap_text += data
        if self.in_title:
            self.page.title += data


def parse(path: Path) -> Page:
    parser = _Parser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser.page


def sri(path: Path) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()


def entry_name(project: Project, app: str) -> str:
    (entry,) = read_manifest(app, project.apps[app].dist).entries
    return entry


def local_outputs(port: int = 4566) -> Outputs:
    """What the emulator provisioning writes: path-style bucket URLs on one origin."""
    endpoint = f"http://127.0.0.1:{port}"
    return Outputs(
        env="local",
        region="us-east-1",
        apps={
            app: AppOutputs(f"mfe-demo-local-{app}", f"{endpoint}/mfe-demo-local-{app}/")
            for app in HOSTED
        },
        endpoint_url=endpoint,
        auth=AuthOutputs("us-east-1_LOCAL1", "localclient1", "us-east-1", endpoint + "/"),
    )


def prod_outputs(project: Project) -> Outputs:
    """What `doit infra env=prod` writes from its stacks' outputs (infra/*.yaml): the
    parent's distribution also serves the shared modules, under /_shared/."""
    hosting = {
        app: {
            "BucketName": f"mfe-demo-prod-{app}",
            "DistributionId": f"E{app}",
            "DistributionDomainName": domain,
            "SiteUrl": f"https://{domain}/",
        }
        for app, domain in CLOUDFRONT.items()
    }
    hosting["mfe-parent"]["SharedUrl"] = f"https://{CLOUDFRONT['mfe-parent']}/_shared/"
    auth = {"UserPoolId": "eu-west-1_PROD1", "UserPoolClientId": "prodclient1"}
    return outputs_from_stacks(project.env("prod"), hosting, auth)


@pytest.fixture(scope="module")
def built(monorepo_built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy of the monorepo with every app really built, shared by read-only tests."""
    return link_copy(monorepo_built, tmp_path_factory.mktemp("shell") / "repo")


@pytest.fixture
def copy(built: Path, tmp_path: Path) -> Path:
    """A private, already built copy (node_modules included) for tests that run doit."""
    root = link_copy(built, tmp_path / "repo")
    for rendered in root.glob("build/*/index.html"):  # pages of the render tests
        rendered.unlink()
    for outputs in root.glob(".mfe/*/outputs.json"):
        outputs.unlink()
    return root


@pytest.fixture
def light(built: Path, tmp_path: Path) -> Path:
    """Config, shell template and dists only: enough for render_shell, cheap to copy."""
    root = tmp_path / "light"
    shutil.copytree(built, root, ignore=shutil.ignore_patterns("node_modules", ".mfe", "build"))
    shutil.copytree(built / "build/shared", root / "build/shared")  # the shared modules' dist
    return root


def assert_entries(page: Page, project: Project, urls: dict[str, str]) -> None:
    """Scripts (parent first) and preloads point at each built entry with its real SRI; the
    import map maps each shared specifier to one shared file and lists every module's SRI."""
    expected = []
    for app in APPS:
        entry = entry_name(project, app)
        expected.append((urls[app] + entry, sri(project.apps[app].dist / entry)))
    shared_dist = project.apps["shared"].dist
    shared_js = sorted(p.relative_to(shared_dist).as_posix() for p in shared_dist.rglob("*.js"))
    shared = [(urls["shared"] + name, sri(shared_dist / name)) for name in shared_js]
    assert [(t["src"], t["integrity"]) for t in page.scripts] == expected
    # Preloads: the files the apps' shared imports map to; React's specifiers share one
    # file (accounts takes named exports only), and no app imports `react-dom` itself.
    imports = page.importmap["imports"]
    react = imports["react"]
    assert imports["react/jsx-runtime"] == imports["react-dom/client"] == react
    preloaded = [item for item in shared if item[0] in (imports["lit"], react)]
    hints = [(t["href"], t["integrity"]) for t in page.preloads]
    assert sorted(hints) == sorted(preloaded + expected)
    assert all(t["crossorigin"] == "anonymous" for t in page.scripts + page.preloads)
    # In the order the page runs them: the parent's modules (Lit), then its entry, then
    # each fragment's (accounts brings React) before its entry.
    entries = [hints.index(item) for item in expected]
    assert entries == sorted(entries)
    assert [url for url, _ in hints[: entries[0]]] == [imports["lit"]]
    assert imports["react"] in [url for url, _ in hints[entries[0] : entries[1]]]
    assert entries[2] == entries[1] + 1  # payments' Lit is already there

    assert sorted(imports) == SHARED_SPECIFIERS
    assert all(str(url).startswith(urls["shared"]) for url in imports.values())
    assert page.importmap["integrity"] == dict(sorted(expected + shared))
    # The only inline script is allowed by its hash, never by 'unsafe-inline'.
    digest = hashlib.sha256(page.importmap_text.encode()).digest()
    assert page.csp["script-src"][-1] == f"'sha256-{base64.b64encode(digest).decode()}'"
    assert "'unsafe-inline'" not in page.csp["script-src"]
    first_module = min(
        i
        for i, (_, a) in enumerate(page.tags)
        if a.get("type") == "module" or a.get("rel") == "modulepreload"
    )
    assert page.tags.index(("script", {"type": "importmap"})) < first_module


def test_dev_page_loads_each_app_from_its_dev_server(built: Path) -> None:
    project = load_project(built)
    page = parse(render_shell(project, "dev", None))

    urls = {app: f"http://127.0.0.1:{port}/" for app, port in DEV_PORTS.items()}
    urls["shared"] = f"http://127.0.0.1:{SHARED_PORT}/"
    assert_entries(page, project, urls)
    origins = sorted(url.rstrip("/") for url in urls.values())
    assert page.csp == {
        "default-src": ["'self'"],
        "script-src": [*origins, page.csp["script-src"][-1]],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", *origins],
        "connect-src": ["'self'", *origins],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
    }
    build_id = page.config["build_id"]
    assert page.config == {"env": "dev", "build_id": build_id, "auth": None}
    assert isinstance(build_id, str) and len(build_id) == 12
    assert page.mount == ["mfe-accounts", "mfe-payments"]
    assert next(t for t, _ in page.tags if t in ELEMENTS.values()) == "mfe-parent"
    assert page.all("link", rel="icon")[0]["href"] == "http://127.0.0.1:5171/favicon.svg"
    assert page.title == "mfe-demo"
    assert page.all("noscript") and (built / "build/dev/index.html").is_file()


def test_local_page_uses_emulator_buckets_on_one_origin(built: Path) -> None:
    project = load_project(built)
    write_outputs(project, local_outputs())
    page = parse(render_shell(project, "local", None))

    urls = {app: f"http://127.0.0.1:4566/mfe-demo-local-{app}/" for app in HOSTED}
    assert_entries(page, project, urls)
    assert page.csp["script-src"][:-1] == ["http://127.0.0.1:4566"]
    assert page.csp["connect-src"] == ["'self'", "http://127.0.0.1:4566"]
    assert page.config["auth"] == {
        "region": "us-east-1",
        "user_pool_id": "us-east-1_LOCAL1",
        "client_id": "localclient1",
        "endpoint": "http://127.0.0.1:4566/",
    }
    # Content-addressed (publish uploads that copy first), so the page write alone switches it.
    icon = page.all("link", rel="icon")[0]["href"]
    sha = hashlib.sha256((project.parent.dist / "favicon.svg").read_bytes()).hexdigest()
    assert icon == f"http://127.0.0.1:4566/mfe-demo-local-mfe-parent/_ca/{sha[:20]}/favicon.svg"


def test_prod_page_uses_cloudfront_domains_from_outputs(built: Path) -> None:
    """Each app from its distribution; the shared modules from the parent's (the page's own
    domain), so the parent's first paint needs no other connection than the page's."""
    project = load_project(built)
    write_outputs(project, prod_outputs(project))
    page = parse(render_shell(project, "prod", None))

    urls = {app: f"https://{domain}/" for app, domain in CLOUDFRONT.items()}
    urls["shared"] = f"https://{CLOUDFRONT['mfe-parent']}/_shared/"
    assert_entries(page, project, urls)
    origins = sorted(f"https://{CLOUDFRONT[app]}" for app in APPS)  # not the shared one's
    assert page.csp["script-src"][:-1] == origins
    assert page.csp["img-src"] == ["'self'", "data:", *origins]
    assert page.csp["connect-src"] == [
        "'self'",
        *origins,
        "https://cognito-idp.eu-west-1.amazonaws.com",
    ]
    auth = page.config["auth"]
    assert isinstance(auth, dict) and auth["endpoint"] == PROD_COGNITO
    assert set(auth) == {"region", "user_pool_id", "client_id", "endpoint"}


def test_identical_inputs_give_byte_identical_pages(built: Path, light: Path) -> None:
    first = render_shell(load_project(built), "dev", None).read_bytes()
    again = render_shell(load_project(light), "dev", None).read_bytes()
    assert first == again  # another folder, another time: the same bytes

    project = load_project(light)
    context = shell_context(project, "local", local_outputs())
    moved = shell_context(project, "local", local_outputs(port=4567))
    assert context["build_id"] != moved["build_id"]  # URLs are part of the build id
    assert next(a.base_url for a in context["apps"]).endswith("/mfe-demo-local-mfe-parent/")


@pytest.mark.parametrize(
    ("file", "statement"),
    [
        ("entry", 'import D from"react-dom/client";'),
        ("entry", 'import*as D from"react-dom/client";'),
        ("entry", 'import("react-dom/client");'),
        ("chunks/lazy-7TQ2KX4M.js", 'import D from"react-dom/client";export{D};'),
    ],
)
def test_an_app_needing_a_whole_combined_module_gets_its_own_file(
    light: Path, file: str, statement: str
) -> None:
    """React's specifiers share one file that has only their named exports (and react's
    default): code that takes react-dom/client's default or namespace is mapped elsewhere,
    a chunk only loaded lazily too."""
    project = load_project(light)
    dist = project.apps["accounts"].dist
    path = dist / (entry_name(project, "accounts") if file == "entry" else file)
    path.parent.mkdir(exist_ok=True)
    path.write_text(statement + (path.read_text() if path.is_file() else ""))
    write_manifest("accounts", dist)
    imports = parse(render_shell(project, "dev", None)).importmap["imports"]
    fallbacks = read_manifest("shared", project.apps["shared"].dist).fallbacks[""]
    assert (
        imports["react-dom/client"]
        == f"http://127.0.0.1:{SHARED_PORT}/" + fallbacks["react-dom/client"]
    )
    assert imports["react"] == imports["react/jsx-runtime"] != imports["react-dom/client"]


def test_a_listed_chunk_gone_missing_is_named_not_guessed(light: Path) -> None:
    """A dist/ replaced during the render (a build in another terminal): the page is not
    rendered from an import map worked out without that file."""
    project = load_project(light)
    dist = project.apps["accounts"].dist
    chunk = dist / "chunks" / "lazy-7TQ2KX4M.js"
    chunk.parent.mkdir(exist_ok=True)
    chunk.write_text('import D from"react-dom/client";export{D};')
    write_manifest("accounts", dist)
    chunk.unlink()
    with pytest.raises(MfeError, match=r"lazy-7TQ2KX4M\.js: missing, .* build that app again"):
        render_shell(project, "dev", None)
    assert not (light / "build/dev/index.html").exists()
    chunk.write_text('import D from"react-dom/client";export{D};')  # the build finished
    imports = parse(render_shell(project, "dev", None)).importmap["imports"]
    assert imports["react-dom/client"] != imports["react"]


def test_template_mistakes_name_the_file_and_line(light: Path) -> None:
    project = load_project(light)
    template = light / "shell/index.html.j2"
    lines = template.read_text().splitlines(keepends=True)
    body = lines.index("<body>\n")
    with_undefined = [*lines[: body + 1], "  <p>{{ release_notes }}</p>\n", *lines[body + 1 :]]
    template.write_text("".join(with_undefined))
    with pytest.raises(MfeError) as undefined:
        render_shell(project, "dev", None)
    message = str(undefined.value)
    assert f"shell/index.html.j2, line {body + 2}:" in message
    assert "'release_notes' is undefined" in message
    assert not (light / "build/dev/index.html").exists()  # never a half page


def test_missing_manifest_names_the_app(light: Path) -> None:
    shutil.rmtree(light / "apps/accounts/dist")
    with pytest.raises(MfeError, match=r"apps/accounts/dist/asset-manifest.json: missing.*"):
        render_shell(load_project(light), "dev", None)


def test_bad_url_override_is_refused(light: Path) -> None:
    toml = light / "mfe.toml"
    toml.write_text(toml.read_text() + '\n[env.prod.urls]\naccounts = "accounts.example.com"\n')
    project = load_project(light)
    write_outputs(project, prod_outputs(project))
    with pytest.raises(MfeError, match=r"app 'accounts': base URL .*\[env.prod.urls\]"):
        render_shell(project, "prod", None)


def test_doit_shell_dev_is_incremental_and_exact(copy: Path) -> None:
    """Up to date when nothing changed; one app's change touches only its lines (and the
    import map's hash in the CSP); the shared modules are not rebuilt."""
    run_doit(copy, "shell", "env=dev")
    page = copy / "build/dev/index.html"
    before = page.read_text()
    assert "shell" in up_to_date_tasks(run_doit(copy, "shell", "env=dev").stdout)

    toml = copy / "mfe.toml"
    toml.write_text(toml.read_text().replace("workers = 8", "workers = 4"))
    assert "shell" in up_to_date_tasks(run_doit(copy, "shell", "env=dev").stdout)

    main = copy / "apps/payments/src/main.js"
    main.write_text(main.read_text() + "globalThis.mfeShellTest = 'changed';\n")
    rendered = run_doit(copy, "shell", "env=dev").stdout
    ran = executed_tasks(rendered)
    assert {"build:payments", "shell"} <= ran
    assert "shell: wrote build/dev/index.html for env 'dev'" in rendered.splitlines(), rendered
    assert not ran & {"build:accounts", "build:shared"}
    after = page.read_text()

    diff = list(difflib.unified_diff(before.splitlines(), after.splitlines(), n=0))
    removed = [line[1:] for line in diff if line.startswith("-") and not line.startswith("---")]
    added = [line[1:] for line in diff if line.startswith("+") and not line.startswith("+++")]
    assert len(removed) == len(added) == 5
    assert "Content-Security-Policy" in removed[0] and "sha256-" in added[0]  # the map's hash
    assert "mfe-config" in removed[1] and "mfe-config" in added[1]  # the build id
    assert added[2].lstrip().startswith('"http://127.0.0.1:5173/main-')  # its integrity
    project = load_project(copy)
    new_entry = entry_name(project, "payments")
    new_sri = sri(project.apps["payments"].dist / new_entry)
    for line in added[2:]:
        assert f"http://127.0.0.1:5173/{new_entry}" in line and new_sri in line
    for line in removed[2:]:
        assert "http://127.0.0.1:5173/main-" in line and new_entry not in line


def test_doit_shell_template_syntax_error_fails_and_keeps_page(copy: Path) -> None:
    run_doit(copy, "shell", "env=dev")
    page = copy / "build/dev/index.html"
    good = page.read_bytes()
    template = copy / "shell/index.html.j2"
    lines = template.read_text().splitlines(keepends=True)
    line = lines.index("<body>\n") + 1
    lines[line - 1] = "<body>{% if %}\n"
    template.write_text("".join(lines))

    result = run_doit(copy, "shell", "env=dev", check=False)
    assert result.returncode != 0
    assert f"shell/index.html.j2, line {line}: template syntax error" in result.stdout
    assert "Traceback" not in result.stdout
    assert page.read_bytes() == good


def test_doit_shell_names_a_missing_template_and_where_the_readme_describes_it(
    copy: Path,
) -> None:
    (copy / "shell/index.html.j2").unlink()
    result = run_doit(copy, "shell", "env=dev", check=False)
    assert result.returncode != 0
    (line,) = [line for line in result.stdout.splitlines() if "missing" in line]
    assert line.startswith("error: shell/index.html.j2: missing; create the shell template")
    match = re.search(r"\(see README\.md, '([^']+)'\)$", line)
    assert match, line
    readme = (REPO / "README.md").read_text()
    section = readme.split(f"\n## {match.group(1)}\n", 1)[1].split("\n## ", 1)[0]
    assert "`shell/index.html.j2`" in section, match.group(1)


def test_doit_shell_prod_reads_outputs_and_url_overrides(copy: Path) -> None:
    missing = run_doit(copy, "shell", "env=prod", check=False)
    assert missing.returncode != 0
    assert ".mfe/prod/outputs.json: missing" in missing.stdout
    assert "doit infra env=prod" in missing.stdout
    assert not (copy / "build/prod/index.html").exists()

    write_outputs(load_project(copy), prod_outputs(load_project(copy)))
    assert "shell" in executed_tasks(run_doit(copy, "shell", "env=prod").stdout)
    assert "shell" in up_to_date_tasks(run_doit(copy, "shell", "env=prod").stdout)

    toml = copy / "mfe.toml"
    toml.write_text(
        toml.read_text() + '\n[env.prod.urls]\naccounts = "https://accounts.example.com"\n'
    )
    assert "shell" in executed_tasks(run_doit(copy, "shell", "env=prod").stdout)
    page = parse(copy / "build/prod/index.html")
    accounts = [s["src"] for s in page.scripts if "accounts.example.com" in s["src"]]
    assert accounts == [
        f"https://accounts.example.com/{entry_name(load_project(copy), 'accounts')}"
    ]
    assert "https://accounts.example.com" in page.csp["script-src"]
    assert f"https://{CLOUDFRONT['accounts']}" not in page.csp["script-src"]


@pytest.mark.parametrize("text", ["[]", '{"env": "prod", "region": "eu-west-1", "apps": []}'])
def test_doit_shell_names_an_outputs_file_of_another_shape(copy: Path, text: str) -> None:
    """A hand-edited or foreign `outputs.json` (valid JSON, not the shape provisioning writes)
    is named with what to do, as a truncated one is: no AttributeError traceback."""
    outputs = copy / ".mfe/prod/outputs.json"
    outputs.parent.mkdir(parents=True, exist_ok=True)
    outputs.write_text(text)
    result = run_doit(copy, "shell", "env=prod", check=False)
    assert result.returncode == 1, result.stdout
    assert f"error: {outputs}: unreadable (" in result.stdout, result.stdout
    assert "delete it and run `doit infra env=prod`" in result.stdout
    assert "Traceback" not in result.stdout
    assert not (copy / "build/prod/index.html").exists()
