"""The F5 BIG-IP in front of the cluster: TLS on the public VIP, ingress nodes behind it.

Clients speak TLS to the virtual server (clientssl); the BIG-IP re-encrypts towards
ingress-nginx on 443 (serverssl), and an HTTPS monitor on ingress-nginx's /healthz
takes a failed ingress node out of the pool within seconds.
"""

import pulumi
import pulumi_f5bigip as f5bigip
from pulumi_f5bigip import ltm

from model.schema import StackConfig

# Protocols below TLS 1.2 are off on both sides.
LEGACY_TLS_OFF = ["no-sslv3", "no-tlsv1", "no-tlsv1.1", "dont-insert-empty-fragments"]
HEALTH_REQUEST = "GET /healthz HTTP/1.1\\r\\nHost: f5-health-check\\r\\nConnection: close\\r\\n\\r\\n"
INGRESS_PORT = 443


class EdgeLoadBalancer(pulumi.ComponentResource):
    def __init__(self, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("seoul:edge:EdgeLoadBalancer", "edge", None, opts)
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
            opts=child,
        )
        for host in cfg.with_role("ingress"):
            ltm.PoolAttachment(f"app-servers-{host.name}", pool=pool.name, node=f"{host.address}:{INGRESS_PORT}",
                               opts=child)
        client_ssl = ltm.ProfileClientSsl(
            "clientssl",
            name=self._path("seoul_clientssl"),
            defaults_from="/Common/clientssl",
            cert=f5.certificate,
            key=f5.key,
            tm_options=LEGACY_TLS_OFF,
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
        self.register_outputs({"virtualServer": self.virtual_server.name, "pool": pool.name})

    def _path(self, name: str) -> str:
        return f"/{self._partition}/{name}"
