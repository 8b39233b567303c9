"""The F5 BIG-IP in front of the cluster: TLS on the public VIP, ingress nodes behind it.

Clients speak TLS 1.2 or 1.3 to the virtual server (clientssl); the BIG-IP re-encrypts
towards ingress-nginx on 443 (serverssl), and an HTTPS monitor on ingress-nginx's /healthz
takes a failed ingress node out of the pool within seconds. A node that joins (or comes
back) gets its share of new connections over `SLOW_RAMP_SECONDS`, not all at once.

Plain HTTP on port 80 of the same address gets a permanent redirect to HTTPS (308, which
keeps the method and body of a POST; BIG-IP's built-in `_sys_https_redirect` answers 302,
which browsers replay as GET) and never reaches the pool.

Removal order: each pool member depends on its node's registration step, so when an ingress
host leaves the stack Pulumi deletes its pool member before that step drains the node.
"""

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_f5bigip as f5bigip
from pulumi_f5bigip import ltm

from model.schema import StackConfig

# Protocols below TLS 1.2 are off on both sides. The list replaces the parent profile's
# options, whose defaults ("dont-insert-empty-fragments", "no-tlsv1.3") keep TLS 1.3 off;
# leaving "no-tlsv1.3" out is half of turning 1.3 on (K10251520), the cipher group the other.
LEGACY_TLS_OFF = ["no-sslv3", "no-tlsv1", "no-tlsv1.1", "dont-insert-empty-fragments"]
# Built-in cipher group (BIG-IP 14.1+) with TLS 1.3 suites and ECDHE+AEAD for TLS 1.2;
# a profile with a cipher group must have ciphers "none".
CLIENT_CIPHER_GROUP = "/Common/f5-secure"
# A new or re-enabled member ramps up over this long (least-connections would flood it).
SLOW_RAMP_SECONDS = 60
# Every member is in this priority group; `minimum_active_members` is BIG-IP's priority
# group activation: it keeps at least that many members taking traffic once a lower group
# (for example standby ingress hosts) is added.
PRIORITY_GROUP = 10
HEALTH_REQUEST = "GET /healthz HTTP/1.1\\r\\nHost: f5-health-check\\r\\nConnection: close\\r\\n\\r\\n"
INGRESS_PORT = 443
HTTP_PORT = 80
# An iRule runs on a virtual server with an HTTP profile (HTTP_REQUEST event). The port in a
# Host header ("shop.example:80") is dropped; the redirect goes to the HTTPS virtual server's port.
HTTPS_REDIRECT = """\
when HTTP_REQUEST {{
    HTTP::respond 308 Location "https://[getfield [HTTP::host] ":" 1]{port}[HTTP::uri]" Connection close
}}
"""


class EdgeLoadBalancer(pulumi.ComponentResource):
    def __init__(
        self,
        cfg: StackConfig,
        nodes: Mapping[str, pulumi.Resource] | None = None,
        ingress: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ):
        """`nodes`: node name -> its registration step (whose removal drains the node);
        `ingress`: what serves 443 on the ingress hosts (ingress-nginx). Pool members wait for both.
        """
        super().__init__("seoul:edge:EdgeLoadBalancer", "edge", None, opts)
        nodes = nodes or {}
        f5 = cfg.f5
        self._partition = f5.partition
        provider = f5bigip.Provider(
            "bigip",
            address=f5.management.address,
            port=str(f5.management.port),
            username=f5.management.username,
            password=pulumi.Output.secret(f5.management.password.get_secret_value()),
            validate_certs_disable=False,
            teem_disable=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        child = pulumi.ResourceOptions(parent=self, provider=provider)

        monitor = ltm.Monitor(
            "ingress-https",
            name=self._path("seoul_ingress_https"),
            parent="/Common/https",
            send=HEALTH_REQUEST,
            receive="200 OK",
            interval=5,
            timeout=16,
            opts=child,
        )
        pool = ltm.Pool(
            "app-servers",
            name=self._path("app_servers"),
            monitors=[monitor.name],
            load_balancing_mode="least-connections-member",
            service_down_action="reselect",
            slow_ramp_time=SLOW_RAMP_SECONDS,
            minimum_active_members=min_active_members(len(cfg.ingress_nodes)),
            opts=child,
        )
        for host in cfg.ingress_nodes:
            after = [*([nodes[host.name]] if host.name in nodes else []), *ingress]
            ltm.PoolAttachment(f"app-servers-{host.name}", pool=pool.name, node=f"{host.address}:{INGRESS_PORT}",
                               priority_group=PRIORITY_GROUP,
                               opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=after)))
        client_ssl = ltm.ProfileClientSsl(
            "clientssl",
            name=self._path("seoul_clientssl"),
            defaults_from="/Common/clientssl",
            cert=f5.certificate,
            key=f5.key,
            tm_options=LEGACY_TLS_OFF,
            cipher_group=CLIENT_CIPHER_GROUP,
            ciphers="none",
            opts=child,
        )
        server_ssl = ltm.ProfileServerSsl(
            "serverssl",
            name=self._path("seoul_serverssl"),
            defaults_from="/Common/serverssl",
            tm_options=LEGACY_TLS_OFF,
            opts=child,
        )
        self.virtual_server = ltm.VirtualServer(
            "vs-app",
            name=self._path("vs_app"),
            destination=str(f5.virtual_address),
            port=f5.port,
            ip_protocol="tcp",
            pool=pool.name,
            profiles=["/Common/tcp"],
            client_profiles=[client_ssl.name],
            server_profiles=[server_ssl.name],
            source_address_translation="automap",
            opts=child,
        )
        redirect = ltm.IRule("https-redirect", name=self._path("seoul_https_redirect"),
                             irule=https_redirect(f5.port), opts=child)
        self.redirect_server = ltm.VirtualServer(
            "vs-app-http",
            name=self._path("vs_app_http"),
            destination=str(f5.virtual_address),
            port=HTTP_PORT,
            ip_protocol="tcp",
            profiles=["/Common/tcp", "/Common/http"],
            irules=[redirect.name],
            opts=child,
        )
        self.register_outputs({"virtualServer": self.virtual_server.name, "pool": pool.name})

    def _path(self, name: str) -> str:
        return f"/{self._partition}/{name}"


def https_redirect(port: int) -> str:
    """The iRule (Tcl) that answers every plain-HTTP request with a 308 to `https://<host>[:port]<uri>`."""
    return HTTPS_REDIRECT.format(port="" if port == 443 else f":{port}")


def min_active_members(members: int) -> int:
    """Members that keep taking traffic before a lower priority group is used: 2, or all if fewer."""
    return min(2, members)
