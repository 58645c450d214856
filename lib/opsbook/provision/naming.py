"""Names of the estate's resources in another region built from the same Terraform code.

S3 bucket names are global, and a multi-region trail of the home region holds its name
in every region (as a shadow trail), so buckets and trails in a region other than the
env's home region carry the region as a suffix. KMS aliases, DynamoDB tables, clusters
and SSM parameters are regional and keep their names.
"""

from __future__ import annotations

from opsbook.errors import UsageError
from opsbook.params import Params, known_regions


def target_region(params: Params, given: str = "") -> str:
    """A region parameter, checked; empty means the env's home region."""
    region = given or params.region
    if region not in known_regions():
        raise UsageError(f"region: expected an AWS region such as eu-west-1, got {region!r}")
    return region


def first_other_region(params: Params, given: str = "") -> str:
    """A target region parameter; empty means the first of params `other_regions`."""
    if given:
        return target_region(params, given)
    if not params.other_regions:
        raise UsageError(f"{params.source}: no target region given and params 'other_regions' is empty",
                         remedy="pass target_region (e.g. eu-west-1) or add other_regions to params")
    return params.other_regions[0]


def regional(params: Params, name: str, region: str) -> str:
    """A globally named resource `name` of the home region, as named in `region`."""
    return name if region == params.region else f"{name}-{region}"


bucket = regional
