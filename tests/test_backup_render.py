"""What the backup work renders, read by the real checkers: the Percona CRD, the chart's
values, rclone itself, systemd; the uplink verdict and its policy."""

import json
import subprocess

import jsonschema
import pytest
import yaml

from model import load_config
from model.load import ConfigError
from offline.stackfile import read_stack_file
from offline.wire import plain
from render import backup, database
from tests.network_checks import strict, values_problems
from tests.planning import registrations
from tests.provider_schemas import not_in_sdk
from tests.stacks import altered_stack
from tests.tools import REPO, require_shared, require_tool


def stack(name: str):
    return load_config(read_stack_file(REPO / f"Pulumi.{name}.yaml").lookup)


def cluster_schema() -> dict:
    path = require_shared("schemas/percona-pg-operator-v2.6.0/pgv2.percona.com_perconapgclusters.yaml")
    crd = yaml.safe_load(path.read_text())
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v2"]
    return strict(version["schema"]["openAPIV3Schema"])


@pytest.mark.parametrize("name", ["seoul-prod", "seoul-stage"])
def test_the_postgres_cluster_validates_against_the_percona_crd(name):
    cfg = stack(name)
    obj = database.cluster(cfg, cfg.database)
    errors = [f"{e.json_path}: {e.message}" for e in jsonschema.Draft7Validator(cluster_schema()).iter_errors(obj)]
    assert errors == []


def test_the_crd_check_notices_a_misspelled_field():
    cfg = stack("seoul-prod")
    obj = database.cluster(cfg, cfg.database)
    obj["spec"]["backups"]["pgbackrest"]["repos"][0]["schedule"] = {"full": "0 1 * * *"}  # schedules
    assert list(jsonschema.Draft7Validator(cluster_schema()).iter_errors(obj))


def test_the_cluster_is_ha_on_ceph_rbd_with_an_encrypted_repo_in_seoul():
    cfg = stack("seoul-prod")
    spec = database.cluster(cfg, cfg.database)["spec"]
    [instances] = spec["instances"]
    assert instances["replicas"] >= 2
    assert instances["dataVolumeClaimSpec"]["storageClassName"] == "ceph-rbd"
    [term] = instances["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    pgbackrest = spec["backups"]["pgbackrest"]
    [repo] = pgbackrest["repos"]
    assert repo["s3"] == {"bucket": cfg.backup_bucket, "endpoint": "s3.ap-northeast-2.amazonaws.com",
                          "region": "ap-northeast-2"}
    assert repo["schedules"] == {"full": "0 1 * * *", "incremental": "0 */4 * * *"}
    options = pgbackrest["global"]
    assert options["repo1-cipher-type"] == "aes-256-cbc"
    assert options["repo1-retention-full"] == "7" and options["repo1-retention-full-type"] == "count"
    assert options["repo1-path"].startswith("/postgresql/")
    assert pgbackrest["configuration"] == [{"secret": {"name": "shop-db-pgbackrest-secrets"}}]


def test_operator_values_are_keys_the_chart_knows():
    release = database.operator_release()
    assert values_problems(release.chart.name, release.chart.version, release.values) == []
    assert values_problems(release.chart.name, release.chart.version, {"watchAllNamespace": True})


def test_the_passphrase_and_keys_reach_the_cluster_only_as_a_secret():
    regs = registrations(REPO / "Pulumi.seoul-prod.yaml")
    [secret] = [r for r in regs if r.type == "kubernetes:core/v1:Secret" and "pgbackrest" in r.name]
    assert plain(secret.inputs)["stringData"] == "[secret]"
    assert any(r.type == "kubernetes:pgv2.percona.com/v2:PerconaPGCluster" for r in regs)


def test_rclone_reads_the_rendered_config(tmp_path):
    rclone = require_tool("rclone")
    conf = tmp_path / "rclone.conf"
    key = "arn:aws:kms:ap-northeast-2:1:key/k"
    conf.write_text(backup.rclone_config("ap-northeast-2", "AKIAEXAMPLE", "s3cr3t", key))
    out = subprocess.run([rclone, "--config", str(conf), "config", "dump"], capture_output=True, text=True,
                         timeout=30, env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    remote = json.loads(out.stdout)[backup.RCLONE_REMOTE]
    assert remote["type"] == "s3" and remote["provider"] == "AWS" and remote["region"] == "ap-northeast-2"
    assert remote["server_side_encryption"] == "aws:kms" and remote["sse_kms_key_id"].startswith("arn:aws:kms:")
    assert "endpoint" not in remote


def test_units_pass_systemd_analyze_verify(tmp_path):
    analyze = require_tool("systemd-analyze")
    cfg = stack("seoul-prod")
    files = [*backup.etcd_offsite(cfg, "etcd-1").files, *backup.ceph_offsite(cfg, "osd-1").files]
    for f in files:
        if f.path.startswith("/usr/local/sbin/"):
            target = tmp_path / f.path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f.content)
            target.chmod(0o755)
    units = []
    for f in files:
        if f.path.endswith((".service", ".timer")):
            content = f.content.replace("/usr/local/sbin/", f"{tmp_path}/usr/local/sbin/")
            (tmp_path / f.path.rsplit("/", 1)[1]).write_text(content)
            units.append(str(tmp_path / f.path.rsplit("/", 1)[1]))
    out = subprocess.run([analyze, "verify", "--man=no", *units], capture_output=True, text=True, timeout=60)
    problems = [line for line in out.stderr.splitlines() if "seoul-backup" in line]
    assert problems == [], out.stderr


def test_uplink_verdict_counts_every_kind_and_the_limit_keeps_the_share():
    cfg = stack("seoul-prod")
    volume = backup.daily_offsite_gb(cfg)
    assert volume["ceph"] == 10_000  # workload.dailyIngestTb 10
    assert volume["etcd"] == 24 * 3 * cfg.backup.etcd_snapshot_gb
    assert volume["postgresql"] == pytest.approx(200 * 2**30 / 1e9 + 20)
    share = 10e9 / 8 * 0.30  # bytes/s at 30% of 10 Gbps
    assert backup.uplink_hours(cfg) == pytest.approx(sum(volume.values()) * 1e9 / share / 3600)
    # Each kind gets the share in proportion to its volume: at its --bwlimit it finishes in
    # the verdict's hours, and every rclone job at once (pgBackRest's part left over, held by
    # the FortiGate shaper as it has no rate option) stays within the share.
    def limit(kind):
        return int(backup.bwlimit(cfg, kind).removesuffix("k")) * 1024

    # The plan names every backup job and where it runs (the issue: "shows ... the backup timers").
    line = backup.schedule_line(cfg)
    assert f"{backup.CEPH_TIMER} on {backup.ceph_backup_host(cfg).name}" in line
    assert f"{backup.ETCD_TIMER} on {', '.join(m.name for m in cfg.etcd_members)}" in line
    assert cfg.database.full_schedule in line and line in backup.uplink_lines(cfg)

    members = len(cfg.etcd_members)
    assert limit("ceph") + limit("etcd") * members + limit("postgresql") <= share
    for kind in ("ceph", "etcd"):
        hours = volume[kind] * 1e9 / (limit(kind) * (members if kind == "etcd" else 1)) / 3600
        assert hours == pytest.approx(backup.uplink_hours(cfg), rel=1e-3)


def test_a_prod_stack_whose_backups_cannot_finish_in_a_day_is_refused(tmp_path):
    from tests.planning import run_plan

    def one_gbps(c):
        c["seoul-cluster:network"]["uplinkGbps"] = 1

    run = run_plan(altered_stack(tmp_path, "seoul-prod", one_gbps), tmp_path / "out")
    assert run.returncode == 1, run.stdout + run.stderr
    found = [v for v in run.json("policy.json")["violations"] if v["policy"] == "backup-offsite-fits-uplink"]
    assert [v["level"] for v in found] == ["mandatory"]
    assert "cannot finish in a day" in found[0]["message"]
    assert "does NOT fit in a day" in run.stdout


@pytest.mark.parametrize("name", ["seoul-prod", "seoul-stage"])
def test_both_plans_pass_the_provider_schema_checker(name, tmp_path):
    import sys

    from tests.planning import run_plan

    checker = require_shared("schemas/pulumi-providers/check_inputs.py")
    run = run_plan(REPO / f"Pulumi.{name}.yaml", tmp_path / "out")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "Off-site backups:" in run.stdout and "fits in a day" in run.stdout
    proc = subprocess.run([sys.executable, str(checker), str(run.out / "plan.json")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "0 finding(s)" in proc.stdout, proc.stdout[-3000:]
    assert "aws-7.51.1" in proc.stdout


SHAPER_TYPE = "fortios:firewall/shaper/trafficshaper:Trafficshaper"


def test_every_upload_to_the_vault_is_shaped_to_the_share_the_verdict_uses():
    """pgBackRest has no rate option (pgbackrest/pgbackrest#763, #2003): the FortiGate policy that
    lets the nodes reach the vault caps every upload there, at the share the verdict counts."""

    from pulumiverse_fortios.firewall.shaper import TrafficshaperArgs

    cfg = stack("seoul-prod")
    regs = registrations(REPO / "Pulumi.seoul-prod.yaml")
    [shaper] = [plain(r.inputs) for r in regs if r.type == SHAPER_TYPE]
    assert shaper == {"name": backup.SHAPER, "bandwidthUnit": "mbps", "maximumBandwidth": 3000,
                      "perPolicy": "disable"}  # 30% of 10 Gbps, one limit over all sessions
    # The trimmed fortios schema in ../shared lacks this type: its inputs are the pinned SDK's.
    assert not_in_sdk(TrafficshaperArgs, shaper) == set()

    policies = {r.name: plain(r.inputs) for r in regs if r.type == "fortios:firewall/policy:Policy"}
    rule = policies["nodes-to-backup-vault"]
    assert rule["trafficShaper"] == backup.SHAPER and "trafficShaperReverse" not in rule  # restores unshaped
    assert (rule["srcaddrs"], rule["dstaddrs"], rule["nat"], rule["action"]) == (
        [{"name": "seoul-node-network"}], [{"name": "seoul-backup-vault"}], "enable", "accept")
    assert rule["policyid"] < policies["deny-everything-else"]["policyid"]
    addresses = {r.name: plain(r.inputs) for r in regs if r.type == "fortios:firewall/address:Address"}
    assert addresses["seoul-backup-vault"]["type"] == "fqdn"
    assert addresses["seoul-backup-vault"]["fqdn"] == f"{cfg.backup_bucket}.s3.ap-northeast-2.amazonaws.com"

    # Both writers address the bucket by that name: pgBackRest host-style, rclone as AWS.
    repo = database.cluster(cfg, cfg.database)["spec"]["backups"]["pgbackrest"]
    assert repo["global"]["repo1-s3-uri-style"] == "host"
    assert f"{repo['repos'][0]['s3']['bucket']}.{repo['repos'][0]['s3']['endpoint']}" == backup.vault_host(cfg)
    conf = backup.rclone_config("ap-northeast-2", "k", "s", "arn")
    assert "provider = AWS" in conf and "force_path_style" not in conf

    # The verdict's hours are at the shaper's rate.
    verdict = backup.uplink_verdict(cfg)
    assert verdict["shareMbps"] == shaper["maximumBandwidth"] and verdict["uploadShaper"] == backup.SHAPER
    total = sum(backup.daily_offsite_gb(cfg).values()) * 8e9
    assert verdict["hoursPerDay"] == pytest.approx(total / (shaper["maximumBandwidth"] * 1e6) / 3600, abs=0.01)
    assert f"at {int(shaper['maximumBandwidth'])} Mbps" in backup.uplink_lines(cfg)[-1]
    unshaped = cfg.model_copy(update={"fortigate": None})
    assert "NOT capped" in backup.uplink_lines(unshaped)[-1] and backup.uplink_verdict(unshaped)["uploadShaper"] is None


def test_the_rbd_full_interval_reaches_the_job_and_may_not_outlast_the_vault(tmp_path):
    assert 'Environment="FULL_EVERY=7"' in backup.ceph_service(stack("seoul-prod"), "osd-1")

    def every_40_days(c):
        c["seoul-cluster:backup"]["cephFullEveryDays"] = 40

    path = altered_stack(tmp_path, "seoul-prod", every_40_days)
    with pytest.raises(ConfigError, match="backup: cephFullEveryDays 40 is above retentionDays 35"):
        load_config(read_stack_file(path).lookup)


def test_the_readmes_hand_restore_config_is_what_the_restore_test_uses():
    # tests/test_backup_restore.py restores with database.repo1_options in pgbackrest.conf;
    # the README's hand restore must name the same options (all in the file: recovery's
    # archive-get gets none from the command line).
    from render import database

    readme = (REPO / "README.md").read_text()
    block = readme.split("cat >/etc/pgbackrest/pgbackrest.conf <<'CONF'\n[global]\n", 1)[1].split("\nCONF\n", 1)[0]
    cfg = stack("seoul-prod")
    assert dict(line.split("=", 1) for line in block.splitlines()) == database.repo1_options(cfg, cfg.database)
    assert "--archive-mode=off restore" in readme
