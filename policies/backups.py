"""Backup bucket rules (S3 in ap-northeast-2).

A backup bucket is an `aws:s3/bucket:Bucket` whose `tags` contain `backup: "true"`.
Its settings live in companion resources (BucketVersioning, BucketServerSideEncryption-
Configuration, BucketPublicAccessBlock, BucketObjectLockConfiguration, BucketPolicy);
a companion belongs to a bucket when its `bucket` input depends on that bucket
(property dependency, as `bucket=b.id` records) or names it literally.
"""

from __future__ import annotations

import json
from collections.abc import Callable
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
from pulumi_policy.proxy import UnknownValueError

from .shapes import (
    KMS_KEY_TYPE,
    S3_BUCKET_POLICY_TYPE,
    S3_BUCKET_TYPE,
    S3_OBJECT_LOCK_TYPE,
    S3_PUBLIC_ACCESS_BLOCK_TYPE,
    S3_SSE_TYPE,
    S3_VERSIONING_TYPE,
    UNKNOWN,
    Deferred,
    as_list,
    get,
    is_seq,
)

BACKUP_TAG = "backup"


def is_backup_tags(tags: Any) -> bool:
    value = get(tags, BACKUP_TAG) if tags is not None else None
    return isinstance(value, str) and value.strip().lower() == "true"


def backup_buckets(resources: list[PolicyResource], deferred: Deferred) -> list[PolicyResource]:
    found = []
    for res in resources:
        if res.resource_type != S3_BUCKET_TYPE:
            continue
        tags = deferred.get(res.props, "tags")
        if tags is UNKNOWN:
            continue
        backup = deferred.get(tags, BACKUP_TAG)
        if isinstance(backup, str) and backup.strip().lower() == "true":
            found.append(res)
    return found


# Verdict of one companion: True (satisfies), False (does not), UNKNOWN (cannot tell now).
Check = Callable[[PolicyResource, Deferred], Any]


def _companion_policy(
    name: str,
    description: str,
    companion_type: str,
    check: Check,
    missing: str,
    failing: str,
    severity: Severity,
    bucket_check: Check | None = None,
) -> Policy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        deferred = Deferred()
        buckets = backup_buckets(args.resources, deferred)
        companions = [r for r in args.resources if r.resource_type == companion_type]
        for bucket in buckets:
            local = Deferred()
            bucket_name = local.get(bucket.props, "bucket")
            linked: list[PolicyResource] = []
            maybe = False
            for comp in companions:
                if any(d.urn == bucket.urn for d in comp.property_dependencies.get("bucket", [])):
                    linked.append(comp)
                    continue
                target = local.get(comp.props, "bucket")
                if isinstance(target, str) and isinstance(bucket_name, str) and target == bucket_name:
                    linked.append(comp)
                elif target is UNKNOWN and not comp.property_dependencies.get("bucket"):
                    maybe = True

            problems: list[str] = []
            if bucket_check is not None:
                verdict = bucket_check(bucket, local)
                if verdict is UNKNOWN:
                    local.raise_first()
                if verdict is not True:
                    problems.append(str(verdict) if isinstance(verdict, str) else "")
            verdicts = [check(c, local) for c in linked]
            if not any(v is True for v in verdicts):
                if any(v is UNKNOWN for v in verdicts) or maybe:
                    local.raise_first()
                problems.append(failing if linked else missing)
            problems = [p for p in problems if p]
            if problems:
                report_violation(f"backup bucket {bucket.name}: {' '.join(problems)}", bucket.urn)

    return StackValidationPolicy(
        name=name, description=description, validate=validate, severity=severity, tags=["backup", "s3"]
    )


# --- versioning ------------------------------------------------------------------------------
def _versioning_ok(res: PolicyResource, d: Deferred) -> Any:
    status = d.get(res.props, "versioningConfiguration", "status")
    return UNKNOWN if status is UNKNOWN else status == "Enabled"


bucket_versioning = _companion_policy(
    "backup-bucket-versioning",
    "Backup buckets must keep object versions: add an aws.s3.BucketVersioning with "
    "versioning_configuration.status='Enabled' for each backup bucket.",
    S3_VERSIONING_TYPE,
    _versioning_ok,
    "has no BucketVersioning; add one with status 'Enabled'.",
    "its BucketVersioning status is not 'Enabled'; set it to 'Enabled'.",
    Severity.HIGH,
)


# --- SSE-KMS with a customer managed key ------------------------------------------------------
def _sse_ok(res: PolicyResource, d: Deferred) -> Any:
    cmk_dependency = any(dep.resource_type == KMS_KEY_TYPE for dep in res.property_dependencies.get("rules", []))
    result: Any = False
    for rule in d.as_list(d.get(res.props, "rules")):
        if rule is UNKNOWN:
            result = UNKNOWN
            continue
        algorithm = d.get(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm")
        if algorithm is UNKNOWN:
            result = UNKNOWN
            continue
        if algorithm not in ("aws:kms", "aws:kms:dsse"):
            continue
        if cmk_dependency:
            return True
        key = d.get(rule, "applyServerSideEncryptionByDefault", "kmsMasterKeyId")
        if key is UNKNOWN:
            result = UNKNOWN
        elif isinstance(key, str) and key and "alias/aws/" not in key:
            return True
    return result


bucket_sse_kms_cmk = _companion_policy(
    "backup-bucket-sse-kms-cmk",
    "Backup buckets must be encrypted with SSE-KMS under a customer-managed key: add an "
    "aws.s3.BucketServerSideEncryptionConfiguration with sse_algorithm='aws:kms' and "
    "kms_master_key_id set to an aws.kms.Key you manage (not alias/aws/s3).",
    S3_SSE_TYPE,
    _sse_ok,
    "has no server-side encryption configuration; add SSE-KMS with a customer-managed key.",
    "is not encrypted with SSE-KMS under a customer-managed key; set sse_algorithm='aws:kms' and "
    "kms_master_key_id to your aws.kms.Key.",
    Severity.HIGH,
)


# --- public access block -----------------------------------------------------------------------
PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def _pab_ok(res: PolicyResource, d: Deferred) -> Any:
    values = [d.get(res.props, flag) for flag in PUBLIC_ACCESS_FLAGS]
    if all(v is True for v in values):
        return True
    return UNKNOWN if any(v is UNKNOWN for v in values) else False


bucket_public_access_block = _companion_policy(
    "backup-bucket-public-access-block",
    "Backup buckets must block all public access: add an aws.s3.BucketPublicAccessBlock with "
    "block_public_acls, block_public_policy, ignore_public_acls and restrict_public_buckets all True.",
    S3_PUBLIC_ACCESS_BLOCK_TYPE,
    _pab_ok,
    "has no BucketPublicAccessBlock; add one with all four settings True.",
    "its BucketPublicAccessBlock leaves one of block_public_acls, block_public_policy, "
    "ignore_public_acls, restrict_public_buckets unset or False; set all four to True.",
    Severity.CRITICAL,
)


# --- object lock ---------------------------------------------------------------------------------
def _lock_bucket_ok(bucket: PolicyResource, d: Deferred) -> Any:
    enabled = d.get(bucket.props, "objectLockEnabled")
    if enabled is UNKNOWN:
        return UNKNOWN
    return True if enabled is True else "the bucket is created without object_lock_enabled=True (set it at creation)."


def _lock_config_ok(res: PolicyResource, d: Deferred) -> Any:
    enabled = d.get(res.props, "objectLockEnabled")
    mode = d.get(res.props, "rule", "defaultRetention", "mode")
    days = d.get(res.props, "rule", "defaultRetention", "days")
    years = d.get(res.props, "rule", "defaultRetention", "years")
    values = [enabled, mode, days, years]
    if any(v is UNKNOWN for v in values):
        return UNKNOWN
    return (
        enabled in (None, "Enabled")
        and mode in ("GOVERNANCE", "COMPLIANCE")
        and any(isinstance(v, (int, float)) and v > 0 for v in (days, years))
    )


bucket_object_lock = _companion_policy(
    "backup-bucket-object-lock",
    "Backup buckets must use S3 Object Lock: create the bucket with object_lock_enabled=True and add an "
    "aws.s3.BucketObjectLockConfiguration with a default retention (mode COMPLIANCE or GOVERNANCE, days "
    "or years > 0).",
    S3_OBJECT_LOCK_TYPE,
    _lock_config_ok,
    "has no BucketObjectLockConfiguration; add one with a default retention rule.",
    "its BucketObjectLockConfiguration has no default retention (mode + days/years); add one.",
    Severity.HIGH,
    bucket_check=_lock_bucket_ok,
)


# --- TLS-only bucket policy ---------------------------------------------------------------------
def _listify(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def denies_insecure_transport(document: Any) -> bool:
    """True when the policy document has Deny * s3:* with Bool aws:SecureTransport=false."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return False
    if not isinstance(document, dict):
        return False
    for stmt in _listify(document.get("Statement")):
        if not isinstance(stmt, dict) or stmt.get("Effect") != "Deny":
            continue
        principal = stmt.get("Principal")
        if not (principal == "*" or (isinstance(principal, dict) and "*" in _listify(principal.get("AWS")))):
            continue
        actions = _listify(stmt.get("Action"))
        if not any(a in ("s3:*", "*") for a in actions):
            continue
        condition = stmt.get("Condition") or {}
        secure = (condition.get("Bool") or {}).get("aws:SecureTransport") if isinstance(condition, dict) else None
        if str(secure).lower() == "false":
            return True
    return False


def _plain(value: Any) -> Any:
    """Copy a (proxied) property value into plain dicts/lists, reading every leaf."""
    if isinstance(value, str) or value is None:
        return value
    if is_seq(value):
        return [_plain(v) for v in as_list(value)]
    if hasattr(value, "keys"):
        return {k: _plain(value[k]) for k in value}
    return value


def _tls_ok(res: PolicyResource, d: Deferred) -> Any:
    try:
        document = _plain(get(res.props, "policy"))
    except UnknownValueError as err:
        d.errors.append(err)
        return UNKNOWN
    return denies_insecure_transport(document)


bucket_tls_only = _companion_policy(
    "backup-bucket-tls-only",
    "Backup buckets must refuse plain HTTP: attach an aws.s3.BucketPolicy with a statement "
    "Effect=Deny, Principal='*', Action='s3:*', Condition Bool aws:SecureTransport='false'.",
    S3_BUCKET_POLICY_TYPE,
    _tls_ok,
    "has no bucket policy; add one denying requests where aws:SecureTransport is false.",
    "its bucket policy does not deny requests where aws:SecureTransport is false; add that Deny statement.",
    Severity.HIGH,
)


# --- KMS key rotation -------------------------------------------------------------------------------
def _rotation_validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != KMS_KEY_TYPE:
        return
    spec = get(args.props, "customerMasterKeySpec") or "SYMMETRIC_DEFAULT"
    usage = get(args.props, "keyUsage") or "ENCRYPT_DECRYPT"
    if spec != "SYMMETRIC_DEFAULT" or usage != "ENCRYPT_DECRYPT":
        return  # AWS only rotates symmetric encryption keys
    if get(args.props, "enableKeyRotation") is not True:
        report_violation(f"KMS key {args.name} has enable_key_rotation off; set enable_key_rotation=True.", None)


kms_key_rotation = ResourceValidationPolicy(
    name="backup-kms-key-rotation",
    description="Customer-managed KMS keys (they encrypt the backups) must rotate: set "
    "enable_key_rotation=True on every symmetric aws.kms.Key.",
    validate=_rotation_validate,
    severity=Severity.MEDIUM,
    tags=["backup", "kms"],
)


# --- protect in prod ------------------------------------------------------------------------------------
def _protect_validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != S3_BUCKET_TYPE:
        return
    if not args.get_config().get("requireProtect", False):
        return
    if not is_backup_tags(get(args.props, "tags")):
        return
    if not args.opts.protect:
        report_violation(
            f"backup bucket {args.name} is not protected; pass opts=pulumi.ResourceOptions(protect=True).",
            None,
        )


bucket_protected = ResourceValidationPolicy(
    name="backup-bucket-protected",
    description="Where the pack config sets requireProtect (prod), backup buckets must carry the "
    "`protect` resource option so Pulumi never deletes them.",
    validate=_protect_validate,
    config_schema=PolicyConfigSchema(
        properties={
            "requireProtect": {
                "type": "boolean",
                "default": False,
                "description": "Require protect=True on backup buckets (true in prod).",
            }
        }
    ),
    severity=Severity.HIGH,
    tags=["backup", "s3"],
)

# --- off-site copies fit the uplink --------------------------------------------------------------------
OFFSITE_TYPE = "seoul:backup:OffsiteCopies"


def _uplink_validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for res in args.resources:
        if res.resource_type != OFFSITE_TYPE:
            continue
        hours = get(res.props, "hoursPerDay")
        if isinstance(hours, (int, float)) and hours > 24:
            report_violation(
                f"off-site backups need {hours:.1f} hours a day at {get(res.props, 'sharePercent')}% of a "
                f"{get(res.props, 'uplinkGbps')} Gbps uplink: they cannot finish in a day; raise "
                "network.uplinkGbps or backup.uplinkSharePercent, or back up less.", res.urn)


offsite_fits_uplink = StackValidationPolicy(
    name="backup-offsite-fits-uplink",
    description="The day's off-site backups (the OffsiteCopies component's hoursPerDay, at its share of the "
    "uplink) must finish within 24 hours.",
    validate=_uplink_validate,
    severity=Severity.HIGH,
    tags=["backup", "network"],
)

POLICIES: list[Policy] = [
    bucket_versioning,
    bucket_sse_kms_cmk,
    bucket_public_access_block,
    bucket_object_lock,
    bucket_tls_only,
    kms_key_rotation,
    bucket_protected,
    offsite_fits_uplink,
]
