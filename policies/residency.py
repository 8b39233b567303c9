"""Data residency (Korean PIPA): AWS resources and replicas stay in ap-northeast-2 (Seoul)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    Policy,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from .shapes import (
    AWS_PROVIDER_TYPE,
    S3_BUCKET_TYPE,
    S3_REPLICATION_TYPE,
    SEOUL_REGION,
    UNKNOWN,
    Deferred,
    get,
    resources_of,
)

REGIONS_SCHEMA = PolicyConfigSchema(
    properties={
        "allowedRegions": {
            "type": "array",
            "items": {"type": "string"},
            "default": [SEOUL_REGION],
            "description": "AWS regions inside Korea that may hold personal data.",
        }
    }
)


def allowed_regions(config: Mapping[str, Any]) -> list[str]:
    regions = config.get("allowedRegions")
    return [str(r) for r in regions] if regions else [SEOUL_REGION]


def _region_validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    allowed = allowed_regions(args.get_config())
    if args.resource_type == AWS_PROVIDER_TYPE:
        region = get(args.props, "region")
        if not region:
            report_violation(
                f"AWS provider {args.name} sets no region (it would follow the environment); "
                f"set region={SEOUL_REGION}.",
                None,
            )
        elif region not in allowed:
            report_violation(f"AWS provider {args.name} uses region {region}; set region={SEOUL_REGION}.", None)
        return
    if not args.resource_type.startswith("aws:"):
        return
    region = get(args.props, "region")
    if region:
        if region not in allowed:
            report_violation(f"{args.name} sets region={region}; remove it or set region={SEOUL_REGION}.", None)
        return
    # Explicit providers are analyzed (and reported) themselves; an engine default provider
    # (`default_<version>`) is judged here, on the resources that use it.
    provider = args.provider
    if provider is not None and provider.resource_type == AWS_PROVIDER_TYPE and provider.name.startswith("default"):
        provider_region = get(provider.props, "region")
        if provider_region and provider_region not in allowed:
            report_violation(
                f"{args.name} is created through AWS provider {provider.name} in region "
                f"{provider_region}; use a provider with region={SEOUL_REGION}.",
                None,
            )


aws_region_seoul = ResourceValidationPolicy(
    name="residency-aws-region-seoul",
    description="Every AWS provider and AWS resource must live in ap-northeast-2 (Seoul) under PIPA: "
    "set region=ap-northeast-2 on pulumi:providers:aws and do not override `region` on resources.",
    validate=_region_validate,
    config_schema=REGIONS_SCHEMA,
    severity=Severity.CRITICAL,
    tags=["residency", "pipa", "aws"],
)


def bucket_region(bucket: PolicyResource, deferred: Deferred) -> Any:
    """The bucket's region from its own `region` or its provider's; None when neither says."""
    region = deferred.get(bucket.props, "region")
    if region:
        return region
    if bucket.provider is not None and bucket.provider.resource_type == AWS_PROVIDER_TYPE:
        return deferred.get(bucket.provider.props, "region") or None
    return None


def _bucket_arn_name(arn: str) -> str | None:
    prefix = "arn:aws:s3:::"
    return arn[len(prefix) :].split("/", 1)[0] if arn.startswith(prefix) else None


def _replication_validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    allowed = allowed_regions(args.get_config())
    external_ok = set(args.get_config().get("allowedReplicationDestinations") or [])
    buckets = resources_of(args.resources, S3_BUCKET_TYPE)
    deferred = Deferred()
    names = {b.urn: deferred.get(b.props, "bucket") for b in buckets}

    for repl in resources_of(args.resources, S3_REPLICATION_TYPE):
        local = Deferred()
        dep_buckets = [d for d in repl.property_dependencies.get("rules", []) if d.resource_type == S3_BUCKET_TYPE]
        destinations: dict[str, PolicyResource] = {b.urn: b for b in dep_buckets}
        unresolved: list[str] = []
        for rule in local.as_list(local.get(repl.props, "rules")):
            arn = local.get(rule, "destination", "bucket")
            if arn is UNKNOWN or arn is None:
                continue
            name = _bucket_arn_name(str(arn))
            matches = [b for b in buckets if name is not None and names.get(b.urn) == name]
            for b in matches:
                destinations[b.urn] = b
            autonamed_dep = any(names.get(b.urn) in (None, UNKNOWN) for b in dep_buckets)
            if not matches and not autonamed_dep and str(arn) not in external_ok:
                unresolved.append(str(arn))

        for dest in destinations.values():
            region = bucket_region(dest, local)
            if region is UNKNOWN:
                local.raise_first()
            if region and region not in allowed:
                report_violation(
                    f"{repl.name} replicates to bucket {dest.name} in {region}; replicate only to "
                    f"buckets in {SEOUL_REGION}.",
                    repl.urn,
                )
        for arn in unresolved:
            report_violation(
                f"{repl.name} replicates to {arn}, which this stack does not manage, so its region "
                f"cannot be shown to be {SEOUL_REGION}; replicate to a bucket defined here (or list it "
                "in allowedReplicationDestinations once verified to be in Korea).",
                repl.urn,
            )
        if not destinations and not unresolved and local.errors:
            local.raise_first()


s3_replication_korea = StackValidationPolicy(
    name="residency-s3-replication-korea",
    description="S3 replication must not copy data out of Korea: every replication destination must be "
    "a bucket in ap-northeast-2.",
    validate=_replication_validate,
    config_schema=PolicyConfigSchema(
        properties={
            **REGIONS_SCHEMA.properties,
            "allowedReplicationDestinations": {
                "type": "array",
                "items": {"type": "string"},
                "default": [],
                "description": "Bucket ARNs outside this stack verified to be in Korea.",
            },
        }
    ),
    severity=Severity.CRITICAL,
    tags=["residency", "pipa", "aws", "s3"],
)

POLICIES: list[Policy] = [aws_region_seoul, s3_replication_korea]
