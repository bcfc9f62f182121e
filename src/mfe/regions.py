"""Whether an environment's `region` is one AWS has, checked offline when mfe.toml loads.

A misspelled region (`eu-westt-1`) made every request retry against a host that does not
exist for ~23 s, then fail with a traceback; one with a space in it failed with botocore's
InvalidRegionError. The known regions are botocore's own list (`data/partitions.json`, the
file its endpoint rules read), so the check needs no network.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from importlib import metadata
from pathlib import Path

from mfe.errors import closest

_NAME = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")
"""What botocore accepts as a region name at all (a host name label)."""


@functools.cache
def known_regions() -> frozenset[str]:
    """The regions of every partition botocore knows (aws, aws-cn, ...), without
    pseudo-regions such as `aws-global`."""
    # Found, not imported: importing botocore costs every doit command ~0.1 s.
    spec = importlib.util.find_spec("botocore")
    assert spec is not None and spec.submodule_search_locations, "botocore is a dependency"
    folder = Path(next(iter(spec.submodule_search_locations)))
    data = json.loads((folder / "data" / "partitions.json").read_bytes())
    return frozenset(
        region
        for partition in data["partitions"]
        for region in partition["regions"]
        if re.fullmatch(partition["regionRegex"], region)
    )


def region_problem(region: str, aws: bool) -> str | None:
    """Why `region` cannot be used, or None. `aws`: it must be a region AWS has (not only
    a name: an S3-compatible store or the emulator takes any)."""
    if not _NAME.fullmatch(region):
        return (
            f"is {region!r}, which is no region name (letters, digits and '-', no spaces); "
            "give one such as 'eu-west-1'"
        )
    if not aws:
        return None
    regions = known_regions()
    if region in regions:
        return None
    version = metadata.version("botocore")  # only to say which list it is
    meant = closest(region.lower(), regions)
    hint = f"did you mean '{meant}'? " if meant else "such as 'eu-west-1'; "
    return (
        f"is {region!r}, which is not an AWS region ({hint}a region newer than "
        f"botocore {version} needs `pip install -U botocore`)"
    )
