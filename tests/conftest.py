"""The suite's fixtures live in tests/fixtures/, loaded here as pytest plugins (one way only).

Test modules use fixtures by name and import plain helpers from `fixtures.<module>`;
bench/ imports the same helpers. Every server binds 127.0.0.1 and is stopped by its fixture.
"""

pytest_plugins = [
    "fixtures.repo",  # monorepo_template, monorepo; run_doit, copies of this repo
    "fixtures.browser",  # browser, page (headless Chromium)
    "fixtures.aws",  # moto_server, free_port, published; dummy credentials, loopback clients
    "fixtures.s3",  # moto_s3, seaweed_s3; a synthetic prebuilt site (Site)
]


def pytest_configure(config: object) -> None:
    """Ctrl-C as a terminal gives it. A run started in the background (`scripts/test &`,
    some CI runners) inherits SIGINT ignored, and then neither the tests' own process nor
    the doit processes they start would see a Ctrl-C: the tests that send one would fail.
    Python's handler here means SIGINT's default action in every child too."""
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)
