"""`build/<stack>/report.html`: one self-contained page a reviewer reads before merging.

    .venv/bin/seoul-report --stack seoul-stage       # after `make plan` (which runs it too)

The page has a picture of the topology (inline SVG: subnets, hosts by role, the API VIP
and its control planes, the BGP ToR peers, the F5 virtual server and its pool members,
the Ceph hosts with their disks), the component tree, the policy verdict, the diff when
`diff.json` is there (`make diff`), and the capacity verdict when the plan exports one
(`outputs.cephCapacity`). No script, font or image is loaded from anywhere: it opens from disk.

Reads only files: `plan.json`, `policy.json`, `diff.json` from the plan folder and the
stack file (for the keys of ../shared/design/stack-config.md the plan does not record:
subnets, ToR peers, disks). Exit status: 0 written, 2 a file is missing or unreadable.
"""

import argparse
import ipaddress
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import yaml

from review.plans import REPO, STACK_TYPE, load

PROJECT = "seoul-cluster"
ROLE_COLOURS = {  # fill, text
    "control-plane": ("#dbe8fb", "#1d4f91"),
    "etcd": ("#ece1f7", "#5b2a86"),
    "worker": ("#dff3e4", "#1e6b34"),
    "ingress": ("#fde8d4", "#9a4a06"),
    "storage": ("#d9f2f2", "#0f5e5e"),
}
OPS_CLASS = {"create": "create", "update": "update", "replace": "replace", "delete": "delete"}
SYMBOL = {"create": "+", "update": "~", "replace": "+-", "delete": "-"}
HOSTS_SHOWN_PER_SUBNET = 24
COL_W, HOST_H, HOST_GAP, TOP_Y, BOX_H, RACK_Y = 270, 30, 6, 16, 66, 200


@dataclass
class Topology:
    """What the picture shows; every list is in inventory order."""

    stack: str
    environment: str
    hosts: list[dict[str, Any]]  # {"name", "address", "roles", "disks"}
    api_vip: str
    api_endpoint: str
    as_number: Any
    tor_peers: list[dict[str, Any]]  # {"address", "asNumber"}
    vs: dict[str, Any] | None  # VirtualServer inputs
    pool_members: list[str] = field(default_factory=list)  # addresses
    backup_bucket: str | None = None


def topology(plan: dict[str, Any], stack_config: dict[str, Any]) -> Topology:
    """The picture's facts: hosts and network from the stack file, the edge from the plan."""
    network = stack_config.get(f"{PROJECT}:network") or {}
    inventory = (plan.get("outputs") or {}).get("inventory") or {}
    hosts = [
        {"name": h["name"], "address": str(h["address"]), "roles": list(h.get("roles", [])),
         "disks": list(h.get("disks", []))}
        for h in stack_config.get(f"{PROJECT}:hosts") or []
    ] or [{"name": n, "address": v["address"], "roles": v["roles"], "disks": []} for n, v in inventory.items()]
    vs = next((r["inputs"] for r in plan["resources"] if r["type"] == "f5bigip:ltm/virtualServer:VirtualServer"), None)
    members = [r["inputs"].get("node", "").rsplit(":", 1)[0] for r in plan["resources"]
               if r["type"] == "f5bigip:ltm/poolAttachment:PoolAttachment"]
    outputs = plan.get("outputs") or {}
    return Topology(
        stack=plan["stack"],
        environment=str(outputs.get("environment") or stack_config.get(f"{PROJECT}:environment", "")),
        hosts=hosts,
        api_vip=str(network.get("apiVip", "")),
        api_endpoint=str(outputs.get("controlPlaneEndpoint") or network.get("apiVip", "")),
        as_number=network.get("asNumber"),
        tor_peers=list(network.get("torPeers") or []),
        vs=vs,
        pool_members=members,
        backup_bucket=outputs.get("backupBucket"),
    )


def _subnets(hosts: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for host in hosts:
        net = ipaddress.ip_network(f"{host['address']}/24", strict=False)
        groups.setdefault(str(net), []).append(host)
    return dict(sorted(groups.items(), key=lambda kv: ipaddress.ip_network(kv[0])))


def svg(topo: Topology, changes: dict[str, Counter[str]] | None = None) -> str:
    """The topology as inline SVG: a column per /24 subnet, buses from the edge boxes to hosts;
    `changes` (host name -> steps per op, from the diff) marks the hosts a change touches."""
    subnets = _subnets(topo.hosts)
    width = max(4 * COL_W, len(subnets) * COL_W) + 20
    rows = max((min(len(h), HOSTS_SHOWN_PER_SUBNET + 1) for h in subnets.values()), default=1)
    height = RACK_Y + 40 + rows * (HOST_H + HOST_GAP) + 50
    parts: list[str] = []
    pos: dict[str, tuple[float, float]] = {}  # address -> (x of box's left edge, y of its middle)

    for col, (net, hosts) in enumerate(subnets.items()):
        x = 10 + col * COL_W
        parts.append(f'<rect class="rack" x="{x}" y="{RACK_Y}" width="{COL_W - 20}" '
                     f'height="{height - RACK_Y - 30}" rx="8"/>')
        parts.append(f'<text class="rack-label" x="{x + 44}" y="{RACK_Y + 20}">subnet {escape(net)}</text>')
        shown = hosts if len(hosts) <= HOSTS_SHOWN_PER_SUBNET + 1 else hosts[:HOSTS_SHOWN_PER_SUBNET]
        for row, host in enumerate(shown):
            y = RACK_Y + 34 + row * (HOST_H + HOST_GAP)
            parts.append(_host_box(host, x + 44, y, (changes or {}).get(host["name"])))
            pos[host["address"]] = (x + 44, y + HOST_H / 2)
        if len(shown) < len(hosts):
            y = RACK_Y + 34 + len(shown) * (HOST_H + HOST_GAP) + 18
            parts.append(f'<text class="more" x="{x + 44}" y="{y}">+ {len(hosts) - len(shown)} more hosts</text>')

    boxes = []
    if topo.vs:
        dest = f"{topo.vs.get('destination')}:{int(float(topo.vs.get('port', 0)))}"
        boxes.append(("f5", "F5 BIG-IP virtual server", [f"{_short(topo.vs.get('name', ''))} on {dest}",
                      f"pool {_short(topo.vs.get('pool', ''))} · {len(topo.pool_members)} members"], topo.pool_members))
    cps = [h["address"] for h in topo.hosts if "control-plane" in h["roles"]]
    boxes.append(("vip", "API VIP (HAProxy + Keepalived)", [topo.api_endpoint, f"{len(cps)} control planes"], cps))
    peers = [f"{p.get('address')} AS{p.get('asNumber')}" for p in topo.tor_peers]
    boxes.append(("bgp", f"BGP ToR peers (cluster AS{topo.as_number})", peers or ["none configured"], []))
    if topo.backup_bucket:
        boxes.append(("s3", "S3 backup vault", [topo.backup_bucket, "ap-northeast-2"], []))

    for i, (kind, title, lines, members) in enumerate(boxes):
        bx = 10 + i * (width - 20) / len(boxes)
        bw = (width - 20) / len(boxes) - 16
        text = "".join(f'<text x="{bx + 10}" y="{TOP_Y + 38 + 15 * n}">{escape(line)}</text>'
                       for n, line in enumerate(lines[:2]))
        parts.append(f'<g class="edge-box {kind}"><rect x="{bx}" y="{TOP_Y}" width="{bw}" height="{BOX_H}" rx="8"/>'
                     f'<text class="title" x="{bx + 10}" y="{TOP_Y + 20}">{escape(title)}</text>{text}</g>')
        lane = 14 + 10 * i  # each relation keeps its own vertical lane in every column
        if kind == "bgp":
            for col in range(len(subnets)):
                rx = 10 + col * COL_W + COL_W / 2
                parts.append(f'<path class="link bgp" d="M{bx + bw / 2},{TOP_Y + BOX_H} L{rx},{RACK_Y}"/>')
            continue
        targets = [pos[a] for a in members if a in pos]
        if not targets:
            continue
        bus_y = TOP_Y + BOX_H + 24 + 16 * i
        start = bx + bw / 2
        parts.append(f'<path class="link {kind}" d="M{start},{TOP_Y + BOX_H} V{bus_y}"/>')
        columns: dict[float, list[float]] = {}
        for tx, ty in targets:
            columns.setdefault(tx - 44 + lane, []).append(ty)
        for lx, ys in columns.items():
            parts.append(f'<path class="link {kind}" d="M{start},{bus_y} H{lx} V{max(ys)}"/>')
            parts += [f'<path class="link {kind}" d="M{lx},{y} H{lx + 44 - lane}"/>' for y in ys]
            parts += [f'<circle class="dot {kind}" cx="{lx}" cy="{y}" r="2.5"/>' for y in ys]
    legend = "".join(
        f'<g transform="translate({10 + i * 130},{height - 8})"><rect x="0" y="-10" width="12" height="12" '
        f'fill="{fill}" stroke="{ink}"/><text x="18" y="0">{role}</text></g>'
        for i, (role, (fill, ink)) in enumerate(ROLE_COLOURS.items())
    )
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height + 10}" width="{width}" '
            f'role="img" aria-label="topology of {escape(topo.stack)}">' + "".join(parts) + legend + "</svg>")


def _short(name: str) -> str:
    """`vs_app` for `/Common/vs_app`: the BIG-IP partition is the same for every object."""
    return name.rsplit("/", 1)[-1]


def _host_box(host: dict[str, Any], x: float, y: float, changes: Counter[str] | None = None) -> str:
    roles = host["roles"]
    main = next((r for r in ("control-plane", "etcd", "storage", "ingress", "worker") if r in roles), "worker")
    fill, ink = ROLE_COLOURS.get(main, ("#eeeeee", "#333333"))
    disks = f" · {len(host['disks'])} disks (Ceph OSD)" if host["disks"] else ""
    label = f"{host['name']}  {host['address']}"
    sub = "/".join(roles) + disks
    return (f'<g class="host"><rect x="{x}" y="{y}" width="{COL_W - 74}" height="{HOST_H}" rx="4" '
            f'fill="{fill}" stroke="{ink}"/><text x="{x + 6}" y="{y + 13}" fill="{ink}" class="host-name">'
            f'{escape(label)}</text><text x="{x + 6}" y="{y + 25}" class="host-roles">{escape(sub)}</text>'
            + (f'<text x="{x + COL_W - 80}" y="{y + 13}" text-anchor="end" class="host-changes">'
               f'{escape(" ".join(f"{SYMBOL[op]}{n}" for op, n in sorted(changes.items())))}</text>' if changes else "")
            + "</g>")


def component_tree(plan: dict[str, Any], diff: dict[str, Any] | None) -> str:
    """Nested <details>: components with their child components, leaves counted by type,
    and the diff's steps counted on every component that holds one."""
    children: dict[str, list[dict[str, Any]]] = {}
    for r in plan["resources"]:
        children.setdefault(r["parent"], []).append(r)
    ops_by_urn = {s["urn"]: s["op"] for s in (diff or {}).get("steps", [])}

    def changes_under(urn: str) -> Counter[str]:
        counts: Counter[str] = Counter()
        if urn in ops_by_urn:
            counts[ops_by_urn[urn]] += 1
        for kid in children.get(urn, []):
            counts += changes_under(kid["urn"])
        return counts

    def node(r: dict[str, Any], depth: int) -> str:
        kids = children.get(r["urn"], [])
        comps = [k for k in kids if children.get(k["urn"])]
        leaves = Counter(k["type"] for k in kids if not children.get(k["urn"]))
        counts = changes_under(r["urn"])
        badges = "".join(f' <span class="badge {OPS_CLASS[op]}">{SYMBOL[op]}{n}</span>'
                         for op, n in sorted(counts.items()))
        leaf_text = ", ".join(f"{n} {escape(t)}" for t, n in leaves.most_common())
        inner = "".join(node(k, depth + 1) for k in comps)
        open_attr = " open" if depth == 0 else ""
        return (f'<details{open_attr}><summary><code>{escape(r["type"])}</code> <b>{escape(r["name"])}</b>{badges}'
                f'</summary><div class="leaves">{leaf_text}</div>{inner}</details>')

    roots = [r for r in plan["resources"] if r["type"] == STACK_TYPE] or children.get("", [])
    return "".join(node(r, 0) for r in roots)


def policy_section(policy: dict[str, Any] | None) -> str:
    if policy is None:
        return '<p class="verdict unknown">No policy.json: the policy pack did not run.</p>'
    violations = policy.get("violations", [])
    mandatory = [v for v in violations if v.get("level") == "mandatory"]
    if mandatory:
        verdict = f'<p class="verdict fail">Blocked: {len(mandatory)} mandatory violation(s)</p>'
    elif violations:
        verdict = f'<p class="verdict warn">Allowed with {len(violations)} advisory violation(s)</p>'
    else:
        verdict = '<p class="verdict pass">Allowed: no policy violations</p>'
    if not violations:
        return verdict
    rows = "".join(f"<tr><td>{escape(v.get('level', ''))}</td><td>{escape(v.get('policy', ''))}</td>"
                   f"<td>{escape(v.get('message', ''))}</td><td><code>{escape(v.get('urn', '').split('::')[-1])}"
                   f"</code></td></tr>" for v in violations)
    return verdict + f"<table><tr><th>level</th><th>policy</th><th>message</th><th>resource</th></tr>{rows}</table>"


def diff_section(diff: dict[str, Any] | None) -> str:
    if diff is None:
        return "<p>No diff: run <code>make diff STACK=&lt;stack&gt; BASE=&lt;ref&gt;</code>.</p>"
    s = diff["summary"]
    head = (f"<p>From <code>{escape(diff['base']['ref'])}</code> ({escape(diff['base']['commit'][:12])}) "
            f"to the working tree: " + " · ".join(
                f'<span class="badge {op}">{SYMBOL[op]} {s[op]} to {op}</span>' for op in OPS_CLASS if s[op])
            + f" · {s['same']} unchanged</p>")
    if not diff["steps"]:
        return head
    by_host: dict[str, list[dict[str, Any]]] = {}
    for step in diff["steps"]:
        by_host.setdefault(step["host"], []).append(step)
    blocks = []
    for host, steps in sorted(by_host.items(), key=lambda kv: (kv[0].startswith("("), kv[0])):
        rows = "".join(
            f'<tr class="{step["op"]}"><td>{SYMBOL[step["op"]]}</td><td>{escape(step["component"])}</td>'
            f'<td><code>{escape(step["type"])}</code></td><td>{escape(step["name"])}</td>'
            f'<td>{escape(", ".join(k + (" (replaces)" if k in step["replaceKeys"] else "") for k in step["keys"]))}'
            f"</td></tr>" for step in steps)
        blocks.append(f"<details open><summary><b>{escape(host)}</b> ({len(steps)})</summary><table>"
                      f"<tr><th></th><th>component</th><th>type</th><th>name</th><th>changed inputs</th></tr>"
                      f"{rows}</table></details>")
    return head + "".join(blocks)


def capacity_section(plan: dict[str, Any]) -> str:
    capacity = (plan.get("outputs") or {}).get("cephCapacity")
    if capacity is None:
        return ("<p>No capacity verdict in this plan (a stack with storage hosts exports it as "
                "<code>cephCapacity</code>).</p>")
    rows = "".join(f"<tr><td>{escape(k)}</td><td>{escape(json.dumps(v) if not isinstance(v, str) else v)}</td></tr>"
                   for k, v in _flatten(capacity))
    return f"<table>{rows}</table>"


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        out: list[tuple[str, Any]] = []
        for k, v in value.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    return [(prefix or "capacity", value)]


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1b1f24;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d0d7de}
.meta{color:#57606a}code{font:12px ui-monospace,monospace}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #d0d7de;padding:3px 8px;text-align:left;
vertical-align:top}th{background:#f6f8fa}
.verdict{font-weight:600;padding:6px 10px;border-radius:6px;display:inline-block}
.pass{background:#dafbe1;color:#116329}.warn{background:#fff8c5;color:#7d4e00}.fail{background:#ffebe9;color:#a40e26}
.unknown{background:#eaeef2}
.badge{font:12px ui-monospace,monospace;padding:0 5px;border-radius:8px;margin-left:4px}
.badge.create,tr.create{background:#dafbe1}.badge.update,tr.update{background:#fff8c5}
.badge.replace,tr.replace{background:#ffe2cc}.badge.delete,tr.delete{background:#ffebe9}
details{margin-left:18px}details>summary{cursor:pointer;margin:2px 0}.leaves{margin-left:22px;color:#57606a;
font-size:12px}
.topology{overflow-x:auto;border:1px solid #d0d7de;border-radius:8px;padding:8px}
svg text{font:12px system-ui,sans-serif;fill:#1b1f24}svg .title{font-weight:600}
svg .host-name{font-weight:600;font-size:11.5px}svg .host-changes{font:600 11px ui-monospace,monospace;fill:#a40e26}
svg .host-roles{font-size:10.5px;fill:#57606a}
svg .rack{fill:#f6f8fa;stroke:#8c959f;stroke-dasharray:4 3}svg .rack-label{font-weight:600;fill:#57606a}
svg .edge-box rect{fill:#fff;stroke:#57606a}svg .f5 rect{stroke:#c2410c}svg .vip rect{stroke:#1d4f91}
svg .bgp rect{stroke:#6e7781}svg .s3 rect{stroke:#0f5e5e}svg .more{fill:#57606a;font-style:italic}
svg .link{fill:none;stroke-width:1.6}svg .link.f5{stroke:#c2410c}svg .link.vip{stroke:#1d4f91}
svg .link.bgp{stroke:#8c959f;stroke-dasharray:5 4}svg .dot.f5{fill:#c2410c}svg .dot.vip{fill:#1d4f91}
"""


def page(plan: dict[str, Any], policy: dict[str, Any] | None, diff: dict[str, Any] | None,
         stack_config: dict[str, Any]) -> str:
    """The whole report as one HTML string (inline CSS and SVG, no script, nothing fetched)."""
    topo = topology(plan, stack_config)
    changes: dict[str, Counter[str]] = {}
    for step in (diff or {}).get("steps", []):
        changes.setdefault(step["host"], Counter())[step["op"]] += 1
    counts = Counter(r["type"] for r in plan["resources"])
    roles = Counter(role for h in topo.hosts for role in h["roles"])
    role_text = ", ".join(f"{n} {r}" for r, n in roles.most_common())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(PROJECT)}/{escape(topo.stack)}: plan review</title><style>{CSS}</style></head>
<body>
<h1>{escape(PROJECT)}/{escape(topo.stack)} <span class="meta">environment {escape(topo.environment)}</span></h1>
<p class="meta">{len(plan["resources"])} resources ({counts.get("command:remote:Command", 0)} remote commands) ·
{len(topo.hosts)} hosts: {escape(role_text)}</p>
<h2>Policy verdict</h2>{policy_section(policy)}
<h2>Topology</h2><div class="topology">{svg(topo, changes)}</div>
<h2>Changes</h2>{diff_section(diff)}
<h2>Capacity</h2>{capacity_section(plan)}
<h2>Components</h2>{component_tree(plan, diff)}
</body></html>
"""


def markdown(plan: dict[str, Any], policy: dict[str, Any] | None, diff: dict[str, Any] | None) -> str:
    """A short Markdown summary for a pull-request comment or a job summary: verdict, counts,
    the diff's summary and the hosts it touches (the full page is the report artifact)."""
    violations = (policy or {}).get("violations", [])
    mandatory = sum(v.get("level") == "mandatory" for v in violations)
    if policy is None:
        verdict = "no policy result"
    elif mandatory:
        verdict = f"**blocked**: {mandatory} mandatory violation(s)"
    else:
        verdict = f"allowed ({len(violations)} advisory violation(s))" if violations else "allowed"
    env = (plan.get("outputs") or {}).get("environment", "")
    lines = [f"#### `{plan['stack']}` ({env}): policy {verdict} · {len(plan['resources'])} resources"]
    for v in violations[:10]:
        lines.append(f"- {v.get('level')} `{v.get('policy')}`: {v.get('message')}")
    if diff is not None:
        s = diff["summary"]
        counts = " · ".join(f"{SYMBOL[op]} {s[op]} to {op}" for op in OPS_CLASS if s[op]) or "no changes"
        base = f"`{diff['base']['ref']}` ({diff['base']['commit'][:12]})"
        lines.append(f"\nAgainst {base}: {counts} · {s['same']} unchanged")
        by_host = Counter((step["host"], step["op"]) for step in diff["steps"])
        hosts = sorted({h for h, _ in by_host})
        if hosts:
            lines += ["", "| host | " + " | ".join(OPS_CLASS) + " |", "|---" * (len(OPS_CLASS) + 1) + "|"]
            for host in hosts[:30]:
                lines.append(f"| {host} | " + " | ".join(str(by_host[(host, op)] or "") for op in OPS_CLASS) + " |")
            if len(hosts) > 30:
                lines.append(f"\n... and {len(hosts) - 30} more hosts (see report.html)")
    return "\n".join(lines) + "\n"


def write(out: Path, stack_file: Path) -> Path:
    """Write `out/report.html` from the plan files in `out` and the stack file; returns its path.

    Raises FileNotFoundError when `out/plan.json` is absent, yaml.YAMLError for a bad stack file.
    """
    plan = load(out, "plan.json")
    if plan is None:
        raise FileNotFoundError(f"{out / 'plan.json'} is absent: run `make plan` first")
    doc = yaml.safe_load(stack_file.read_text()) if stack_file.exists() else {}
    config = (doc or {}).get("config") or {}
    path = out / "report.html"
    path.write_text(page(plan, load(out, "policy.json"), load(out, "diff.json"), config))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="seoul-report", description=__doc__.split("\n")[0])
    parser.add_argument("--stack", required=True, help="stack name (reads Pulumi.<stack>.yaml, build/<stack>/)")
    parser.add_argument("--stack-file", type=Path, help="stack file (default Pulumi.<stack>.yaml)")
    parser.add_argument("--out", type=Path, help="plan folder (default build/<stack>)")
    parser.add_argument("--markdown", type=Path, help="also write a short Markdown summary here (PR comment)")
    args = parser.parse_args(argv)
    out = args.out or REPO / "build" / args.stack
    try:
        path = write(out, args.stack_file or REPO / f"Pulumi.{args.stack}.yaml")
        if args.markdown:
            args.markdown.write_text(markdown(load(out, "plan.json"), load(out, "policy.json"), load(out, "diff.json")))
    except (OSError, yaml.YAMLError, json.JSONDecodeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
