"""The FortiGate 200F in front of the F5 and the node network, through pulumiverse-fortios.

Address objects and services first, then the policies in `policyid` order (render/fortigate.py):
internet -> F5 VIP on 443 and 80, bastion -> SSH and the API VIP, nodes -> the backup vault
through the backups' traffic shaper, nodes -> internet for HTTPS, NTP and SMTP with source NAT,
an explicit deny for the rest; every policy logs all sessions. Policy moves keep the list on
the FortiGate in that order when rules are added later.
"""

from itertools import pairwise

import pulumi
import pulumiverse_fortios as fortios

from model.schema import FortiGate, StackConfig
from render import fortigate


class EdgeFirewall(pulumi.ComponentResource):
    """`policies[name]`: each firewall policy by rule name."""

    policies: dict[str, fortios.firewall.Policy]

    def __init__(self, name: str, cfg: StackConfig, fw: FortiGate, opts: pulumi.ResourceOptions | None = None):
        super().__init__("seoul:firewall:EdgeFirewall", name, None, opts)
        provider = fortios.Provider(
            "fortigate",
            hostname=fw.management.address,
            token=pulumi.Output.secret(fw.management.token.get_secret_value()),
            vdom=fw.management.vdom,
            # Verify the FortiGate's certificate (the system trust store must hold its CA).
            insecure=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        objects: list[pulumi.Resource] = [
            fortios.firewall.Address(a.name, name=a.name, type="fqdn", fqdn=a.fqdn, comment=a.comment, opts=child)
            if a.fqdn else
            fortios.firewall.Address(a.name, name=a.name, type="ipmask", subnet=a.subnet, comment=a.comment,
                                     opts=child)
            for a in fortigate.addresses(cfg, fw)
        ]
        # Shared (per-policy disable): one limit over every session of the policies using it.
        objects += [
            fortios.firewall.shaper.Trafficshaper(sh.name, name=sh.name, bandwidth_unit="mbps",
                                                  maximum_bandwidth=sh.maximum_mbps, per_policy="disable",
                                                  opts=child)
            for sh in fortigate.shapers(cfg)
        ]
        objects += [
            fortios.firewall.service.Custom(s.name, name=s.name, protocol="TCP/UDP/SCTP", tcp_portrange=s.ports,
                                            udp_portrange=s.udp_ports or None, comment=s.comment, opts=child)
            for s in fortigate.services(cfg)
        ]
        self.policies = {}
        previous: list[pulumi.Resource] = []
        for rule in fortigate.rules(fw):
            # Created in order, so each lands after the one before it and the deny comes last.
            policy = fortios.firewall.Policy(
                rule.name,
                policyid=rule.policyid,
                name=rule.name,
                srcintfs=[{"name": rule.source_interface}],
                dstintfs=[{"name": rule.destination_interface}],
                srcaddrs=[{"name": a} for a in rule.sources],
                dstaddrs=[{"name": a} for a in rule.destinations],
                services=[{"name": s} for s in rule.services],
                action=rule.action,
                schedule="always",
                nat="enable" if rule.nat else "disable",
                traffic_shaper=rule.shaper,
                logtraffic=fortigate.LOG_ALL,
                status="enable",
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[*objects, *previous])),
            )
            self.policies[rule.name] = policy
            previous = [policy]
        self._order(fortigate.rules(fw), child, previous)
        self.register_outputs({"policies": sorted(self.policies)})

    def _order(self, rules: list[fortigate.Rule], child: pulumi.ResourceOptions,
               after: list[pulumi.Resource]) -> None:
        """FortiOS appends a new policy at the end of its list, whatever its policyid, so a rule
        added to a FortiGate that already has the deny would sit behind it. Each rule is moved
        before its successor, from the last pair back: a new rule makes new pairs, and a move
        runs when it is created, so the list follows policyid order after every change."""
        for rule, successor in reversed(list(pairwise(rules))):
            move = fortios.firewall.PolicyMove(
                f"{rule.name}-before-{successor.name}",
                policyid_src=rule.policyid,
                policyid_dst=successor.policyid,
                move="before",
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=after)),
            )
            after = [move]
