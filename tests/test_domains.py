"""Custom domains: `[env.X] domain` + `hosted_zone_id` or `certificate_arn` (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_infra import make_project

from mfe.config import load_project
from mfe.envs.cloudformation import outputs_from_stacks
from mfe.envs.session import Session
from mfe.envs.stacks import certificate_parameters, hosting_parameters, resource_names
from mfe.errors import ConfigError

from fixtures.config import set_config
from fixtures.repo import REPO

CERT = "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"
ZONE = "Z0123456789ABCDEFGHIJ"


def with_domain(root: Path, table: str, lines: str) -> None:
    """Set `key = "value"` lines in [table] of root/mfe.toml."""
    for line in lines.splitlines():
        key, value = (part.strip() for part in line.split("=", 1))
        set_config(root, f"{table}.{key}", value.strip('"'))


@pytest.mark.parametrize(
    ("lines", "key"),
    [
        ('domain = "app.example.com"', "env.prod.domain"),  # neither zone nor certificate
        (f'domain = "App Example"\nhosted_zone_id = "{ZONE}"', "env.prod.domain"),
        (f'hosted_zone_id = "{ZONE}"', "env.prod.hosted_zone_id"),  # no domain
        ('domain = "app.example.com"\nhosted_zone_id = "example.com"', "env.prod.hosted_zone_id"),
        (
            f'domain = "app.example.com"\ncertificate_arn = "{CERT.replace("us-east-1", "eu-west-1")}"',
            "env.prod.certificate_arn",
        ),
    ],
)
def test_bad_domain_settings_are_config_errors(tmp_path: Path, lines: str, key: str) -> None:
    project = make_project(tmp_path / "repo", "http://127.0.0.1:4566")
    with_domain(project.root, "env.prod", lines)
    with pytest.raises(ConfigError) as caught:
        load_project(project.root)
    assert f"key '{key}'" in str(caught.value) and "mfe.toml" in str(caught.value)


def test_one_host_per_app_and_the_certificate(tmp_path: Path) -> None:
    project = make_project(tmp_path / "repo", "http://127.0.0.1:4566")
    with_domain(project.root, "env.prod", f'domain = "app.example.com"\nhosted_zone_id = "{ZONE}"')
    project = load_project(project.root)
    env = project.env("prod")
    parent = hosting_parameters(project, env, "mfe-parent", CERT)
    accounts = hosting_parameters(project, env, "accounts", CERT)
    assert parent["DomainName"] == "app.example.com"
    assert accounts["DomainName"] == "accounts.app.example.com"
    assert parent["CertificateArn"] == accounts["CertificateArn"] == CERT
    assert parent["HostedZoneId"] == ZONE
    assert certificate_parameters(env) == {"DomainName": "app.example.com", "HostedZoneId": ZONE}
    assert resource_names(project, env).certificate_stack == "mfe-demo-prod-certificate"
    unset = hosting_parameters(project, project.env("local"), "accounts")
    assert unset["DomainName"] == unset["CertificateArn"] == unset["HostedZoneId"] == ""

    # the stacks' SiteUrl output (the custom host) becomes the app's URL for the shell
    stack = {
        "BucketName": "b",
        "DistributionId": "E1",
        "DistributionDomainName": "d1.cloudfront.net",
    }
    auth = {"UserPoolId": "p", "UserPoolClientId": "c"}
    outputs = outputs_from_stacks(
        env,
        {
            "mfe-parent": {**stack, "SiteUrl": "https://app.example.com/"},
            "accounts": {**stack, "SiteUrl": "https://accounts.app.example.com/"},
            "payments": stack,  # a stack from before SiteUrl existed
        },
        auth,
    )
    assert outputs.apps["mfe-parent"].base_url == "https://app.example.com/"
    assert outputs.apps["accounts"].base_url == "https://accounts.app.example.com/"
    assert outputs.apps["payments"].base_url == "https://d1.cloudfront.net/"


def lint(template: str, parameters: dict[str, str]) -> None:
    """cfn-lint (in-process, its API) with the parameter values the deploy would pass."""
    from cfnlint.api import ManualArgs
    from cfnlint.api import lint as cfn_lint
    from cfnlint.config import ParameterSet

    config = ManualArgs(
        regions=["us-east-1", "eu-west-1"], parameters=[ParameterSet(parameters=parameters)]
    )
    problems = cfn_lint((REPO / "infra" / template).read_text(), config=config)
    assert problems == [], problems


@pytest.mark.parametrize("domain", ["zone", "certificate", None])
def test_templates_lint_clean_with_the_domain_set_and_unset(
    tmp_path: Path, domain: str | None
) -> None:
    project = make_project(tmp_path / "repo", "http://127.0.0.1:4566")
    if domain == "zone":
        with_domain(
            project.root, "env.prod", f'domain = "app.example.com"\nhosted_zone_id = "{ZONE}"'
        )
    elif domain == "certificate":
        with_domain(
            project.root, "env.prod", f'domain = "app.example.com"\ncertificate_arn = "{CERT}"'
        )
    project = load_project(project.root)
    env = project.env("prod")
    for app in project.apps:
        # The parent's distribution id lets it read the shared modules' bucket.
        lint("hosting.yaml", hosting_parameters(project, env, app, CERT if domain else "", "E2P"))
    if domain == "zone":
        lint("certificate.yaml", certificate_parameters(env))


def test_local_accepts_a_domain_and_says_it_is_ignored(
    moto_server: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = make_project(tmp_path / "repo", moto_server)
    with_domain(project.root, "env.local", f'domain = "app.example.com"\nhosted_zone_id = "{ZONE}"')
    project = load_project(project.root)
    session = Session(project, "local")
    outputs = session.outputs
    assert "ignored on the local emulator" in capsys.readouterr().err
    assert outputs.apps["mfe-parent"].base_url.startswith(moto_server)
