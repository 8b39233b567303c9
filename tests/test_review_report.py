"""`report.html`: a self-contained page, checked in real headless Chromium."""

import json
import re

import pytest

from review import report
from review.diff import compare, summary
from review.plans import load
from tests.browser import visit
from tests.planning import run_plan
from tests.tools import REPO, require_tool


@pytest.fixture(scope="module")
def prod(tmp_path_factory):
    """seoul-prod planned, with a diff against a copy that lacked worker-6, and its report."""
    out = tmp_path_factory.mktemp("prod")
    assert run_plan(REPO / "Pulumi.seoul-prod.yaml", out).returncode == 0
    plan = load(out, "plan.json")
    base = {**plan, "resources": [r for r in plan["resources"] if "worker-6" not in r["name"]]}
    steps = compare(base, plan)
    (out / "diff.json").write_text(json.dumps({"stack": "seoul-prod", "base": {"ref": "main", "commit": "0" * 40},
                                               "head": "working tree", "steps": steps,
                                               "summary": summary(steps, plan)}))
    return out, report.write(out, REPO / "Pulumi.seoul-prod.yaml")


def test_page_shows_topology_policy_diff_and_tree(prod):
    _, path = prod
    html = path.read_text()
    svg = html[html.index("<svg"):html.index("</svg>")]
    for text in ("cp-1", "etcd-3", "osd-6", "worker-6", "10.0.1.10:8443", "vs_app on 203.0.113.1:443",
                 "10.0.1.1 AS65001", "subnet 10.0.2.0/24", "8 disks (Ceph OSD)", "pool app_servers · 3 members"):
        assert text in svg, text
    out, _ = prod
    added = len([r for r in load(out, "plan.json")["resources"] if "worker-6" in r["name"]])
    marked = svg.index(f'class="host-changes">+{added}<')  # the diff marks the host it touches
    assert svg.rindex("worker-6  10.0.1.46", 0, marked) > svg.rindex("worker-5", 0, marked)
    assert "Allowed: no policy violations" in html
    assert "worker-6-packages" in html and "to create" in html
    assert "seoul:etcd:EtcdCluster" in html


def test_page_is_self_contained(prod):
    _, path = prod
    html = path.read_text()
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)


def test_policy_violations_are_listed():
    violations = {"violations": [{"policy": "hosts-ssh-root-login-off", "level": "mandatory", "urn": "u::cp-1",
                                  "message": "root <login> on"}]}
    section = report.policy_section(violations)
    assert "Blocked: 1 mandatory" in section and "root &lt;login&gt; on" in section


def test_capacity_verdict_shown_when_the_plan_exports_one():
    assert "No capacity verdict" in report.capacity_section({"outputs": {}})
    section = report.capacity_section({"outputs": {"capacity": {"rawTb": 368.64, "pools": {"rbd": "ok"}}}})
    assert "rawTb" in section and "368.64" in section and "pools.rbd" in section


def test_report_opens_in_chromium_without_errors_or_network(prod, tmp_path):
    chromium = require_tool("chromium")
    _, path = prod
    seen = visit(chromium, path)
    assert seen.errors == []
    assert seen.requests == []
    assert seen.title == "seoul-cluster/seoul-prod: plan review"
    assert seen.screenshot.startswith(b"\x89PNG\r\n\x1a\n") and len(seen.screenshot) > 50_000
    (tmp_path / "report.png").write_bytes(seen.screenshot)


def test_the_browser_check_can_fail(tmp_path):
    """The same visit reports a script error and a request leaving the disk."""
    chromium = require_tool("chromium")
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><title>bad</title><img src="http://127.0.0.1:9/x.png">'
                    "<script>undefinedFunction()</script>")
    seen = visit(chromium, page)
    assert any("undefinedFunction" in e for e in seen.errors)
    assert seen.requests == ["http://127.0.0.1:9/x.png"]
