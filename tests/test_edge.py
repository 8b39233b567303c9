"""The F5 edge under the engine-less monitor: pool of ingress nodes, TLS, the public VIP."""

import pytest

from offline.wire import SECRET, plain
from tests.planning import registrations
from tests.stacks import key, stack_config
from tests.tools import REPO


@pytest.fixture(scope="module")
def f5():
    regs = registrations(REPO / "Pulumi.seoul-prod.yaml")
    return {(r.type.rsplit(":", 1)[1], r.name): (r, plain(r.inputs)) for r in regs
            if r.type.startswith(("f5bigip:", "pulumi:providers:f5bigip"))}


def test_pool_members_are_the_ingress_nodes_on_443(f5):
    ingress = [h["address"] for h in stack_config("seoul-prod")[key("hosts")] if "ingress" in h["roles"]]
    members = sorted(inputs["node"] for (kind, _), (_, inputs) in f5.items() if kind == "PoolAttachment")
    assert members == sorted(f"{address}:443" for address in ingress) == ["10.0.1.11:443", "10.0.1.12:443",
                                                                           "10.0.1.13:443"]
    assert all(inputs["pool"] == "/Common/app_servers" for (k, _), (_, inputs) in f5.items() if k == "PoolAttachment")


def test_pool_is_health_monitored_over_https(f5):
    _, pool = f5[("Pool", "app-servers")]
    _, monitor = f5[("Monitor", "ingress-https")]
    assert pool["monitors"] == [monitor["name"]]
    assert monitor["parent"] == "/Common/https" and monitor["send"].startswith("GET /healthz ")


def test_virtual_server_is_the_public_vip_with_tcp_and_clientssl(f5):
    _, vs = f5[("VirtualServer", "vs-app")]
    _, client_ssl = f5[("ProfileClientSsl", "clientssl")]
    assert (vs["destination"], vs["port"]) == ("203.0.113.1", 443)
    assert vs["profiles"] == ["/Common/tcp"]
    assert vs["clientProfiles"] == [client_ssl["name"]]
    assert {"no-sslv3", "no-tlsv1", "no-tlsv1.1"} <= set(client_ssl["tmOptions"])


def test_management_password_is_secret_and_certificates_are_checked(f5):
    provider_reg, provider = f5[("f5bigip", "bigip")]
    assert provider["password"] == SECRET
    assert provider["validateCertsDisable"] == "false"
    vs_reg, _ = f5[("VirtualServer", "vs-app")]
    assert vs_reg.provider.startswith(provider_reg.urn)


def test_plain_http_on_the_vip_is_redirected_to_https_and_never_reaches_the_pool(f5):
    _, http = f5[("VirtualServer", "vs-app-http")]
    _, irule = f5[("IRule", "https-redirect")]
    _, https = f5[("VirtualServer", "vs-app")]
    assert (http["destination"], http["port"]) == (https["destination"], 80)
    # An iRule's HTTP_REQUEST event needs the HTTP profile; no pool, no TLS profiles.
    assert http["profiles"] == ["/Common/tcp", "/Common/http"] and "pool" not in http
    assert http["irules"] == [irule["name"]]
    assert 'HTTP::respond 308 Location "https://[getfield [HTTP::host] ":" 1][HTTP::uri]"' in irule["irule"]


def test_the_redirect_names_a_non_default_https_port():
    from components.edge import https_redirect
    assert "1]:8443[HTTP::uri]" in https_redirect(8443) and "1][HTTP::uri]" in https_redirect(443)
