"""An app's `element` must be defined by its built bundle (else the page has an empty slot)."""

from __future__ import annotations

from pathlib import Path

from mfe.build.elements import defined_elements

from fixtures.repo import run_doit


def test_defined_elements_of_minified_and_plain_code() -> None:
    minified = 'var sd=1,gd="mfe-accounts",V0=class{};customElements.get(gd)||customElements.define(gd,V0);'
    assert defined_elements(minified) == {"mfe-accounts"}
    assert defined_elements("customElements.define('x-one', A)") == {"x-one"}
    assert defined_elements('customElement("lit-thing")(B)') == {"lit-thing"}
    # a string that is never passed to define does not count
    assert defined_elements('var a="mfe-payments";console.log(a)') == set()
    assert defined_elements("customElements.define(n, A)") == set()
    # names only count whole: not the end of a longer identifier or a property
    assert defined_elements('myCustomElement("x-no")(B);$customElement("x-yes")(C)') == {"x-yes"}
    other = 'var xgd="mfe-other",o={gd:1};o.gd="mfe-prop";gd="mfe-own";customElements.define(gd,V)'
    assert defined_elements(other) == {"mfe-own"}


def test_an_element_the_bundle_does_not_define_is_a_config_error(monorepo: Path) -> None:
    config = monorepo / "mfe.toml"
    config.write_text(config.read_text().replace('"mfe-payments"', '"mfe-payment"'))
    result = run_doit(monorepo, check=False)
    assert result.returncode == 2, result.stdout
    assert "Traceback" not in result.stdout
    errors = [line for line in result.stdout.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stdout
    assert " mfe.toml: key 'apps.payments.element'" in errors[0], errors[0]
    assert str(monorepo) not in errors[0]  # named as the other messages name files
    assert "mfe-payments" in errors[0]  # says what the bundle does define
    assert not (monorepo / "apps" / "payments" / "dist").exists()  # nothing half-built kept

    # built with the right name, then renamed in mfe.toml only: the shell catches it
    config.write_text(config.read_text().replace('"mfe-payment"', '"mfe-payments"'))
    run_doit(monorepo, "shell", "env=dev")
    config.write_text(config.read_text().replace('"mfe-accounts"', '"mfe-account"'))
    result = run_doit(monorepo, "shell", "env=dev", check=False)
    assert result.returncode == 2, result.stdout
    assert "key 'apps.accounts.element'" in result.stdout
    assert "taskid" not in result.stdout
