"""API VIP: HAProxy + Keepalived on the control-plane hosts (kubeadm ha-considerations, option 2).

HAProxy listens on the VIP at `network.apiVipPort` (8443) in TCP mode and balances over
every kube-apiserver on 6443 with an HTTPS `/healthz` check. Keepalived holds the VIP
with VRRP over unicast (no multicast dependency on the ToR switches) and a check script
that lowers a host's priority when its HAProxy or its local API server is unhealthy.
"""

from model.schema import HostSpec, StackConfig
from render.files import FileSet, HostFile, ScriptRun, fingerprint, script

APISERVER_PORT = 6443
# HAProxy's built-in Prometheus exporter (docs.haproxy.org, "Prometheus exporter"; 8405 in its examples).
HAPROXY_METRICS_PORT = 8405
HAPROXY_CFG = "/etc/haproxy/haproxy.cfg"
KEEPALIVED_CONF = "/etc/keepalived/keepalived.conf"
# Written on the host by scripts/apivip-start.sh: `$VIP_INTERFACE=<nic>`, the NIC that
# carries the host's address. NIC names are a fact of the hardware, not of the model.
KEEPALIVED_IFACE_CONF = "/etc/keepalived/interface.conf"
CHECK_SCRIPT = "/etc/keepalived/check_apiserver.sh"

BASE_PRIORITY = 150
# A failing check subtracts more than the spread of priorities, so any healthy host
# outranks every unhealthy one, whatever the host count (up to 9 control planes).
CHECK_WEIGHT = -20


def endpoint(cfg: StackConfig) -> str:
    return f"{cfg.network.api_vip}:{cfg.network.api_vip_port}"


def virtual_router_id(cfg: StackConfig) -> int:
    """1..255, derived from the VIP so two clusters on one segment differ when their VIPs do."""
    return int(cfg.network.api_vip) % 255 + 1


def priority(cfg: StackConfig, host: HostSpec) -> int:
    names = [h.name for h in cfg.control_planes]
    return BASE_PRIORITY - names.index(host.name)


def haproxy_cfg(cfg: StackConfig) -> str:
    servers = "\n".join(
        f"    server {h.name} {h.address}:{APISERVER_PORT} check check-ssl verify none inter 3s fall 3 rise 2"
        for h in cfg.control_planes
    )
    return f"""\
# Kubernetes API VIP frontend: rendered by seoul-cluster (render/apivip.py). Do not edit.
global
    log /dev/log local0
    maxconn 20000
    user haproxy
    group haproxy
    daemon
    stats socket /var/lib/haproxy/stats mode 600 level admin

defaults
    mode tcp
    log global
    option tcplog
    option dontlognull
    option redispatch
    retries 1
    # The API servers share the node network: a connect that takes longer than 1 s goes to
    # a dead host (ARP fails after ~3 s), so give up and redispatch to another server
    # before the client's own timeout. Measured by `make drill`: 8 of ~50 requests failed
    # while a dead control plane was still UP with 5 s, 2 of 62 (during the VIP move) with 1 s.
    timeout connect 1s
    timeout client 35s
    timeout server 35s
    timeout check 10s
    # watches and exec/port-forward streams stay open for a long time
    timeout tunnel 1h
    timeout client-fin 10s

# HAProxy's built-in Prometheus exporter, on every address (the VIP too: whoever holds it answers).
frontend prometheus
    mode http
    bind *:{HAPROXY_METRICS_PORT}
    http-request use-service prometheus-exporter if {{ path /metrics }}
    # Log only errors: Prometheus scrapes every 30 s.
    option httplog
    option dontlog-normal

frontend apiserver
    bind {cfg.network.api_vip}:{cfg.network.api_vip_port}
    mode tcp
    option tcplog
    default_backend apiserver

backend apiserver
    mode tcp
    balance roundrobin
    option httpchk
    http-check connect ssl
    http-check send meth GET uri /healthz
    http-check expect status 200
    default-server on-marked-down shutdown-sessions
{servers}
"""


def keepalived_conf(cfg: StackConfig, host: HostSpec) -> str:
    peers = "\n".join(f"        {h.address}" for h in cfg.control_planes if h.name != host.name)
    unicast_peer = f"    unicast_peer {{\n{peers}\n    }}\n" if peers else ""
    return f"""\
# Kubernetes API VIP on {host.name}: rendered by seoul-cluster (render/apivip.py). Do not edit.
include {KEEPALIVED_IFACE_CONF}

global_defs {{
    router_id {host.name}
    enable_script_security
    script_user nobody
    vrrp_garp_master_refresh 60
}}

vrrp_script check_apiserver {{
    script "{CHECK_SCRIPT} {APISERVER_PORT}"
    interval 3
    timeout 5
    fall 3
    rise 2
    weight {CHECK_WEIGHT}
}}

vrrp_instance kube_apiserver {{
    state BACKUP
    interface $VIP_INTERFACE
    virtual_router_id {virtual_router_id(cfg)}
    priority {priority(cfg, host)}
    advert_int 1
    unicast_src_ip {host.address}
{unicast_peer}    virtual_ipaddress {{
        {cfg.network.api_vip}/32 dev $VIP_INTERFACE
    }}
    track_script {{
        check_apiserver
    }}
}}
"""


def install() -> ScriptRun:
    """Install HAProxy and Keepalived on a control plane."""
    return ScriptRun("apivip-install", "apivip-install.sh")


def frontend(cfg: StackConfig, host: HostSpec) -> FileSet:
    """HAProxy and Keepalived configs for `host`, then start both (stop Keepalived first on removal)."""
    files = (
        HostFile("haproxy-cfg", HAPROXY_CFG, haproxy_cfg(cfg)),
        HostFile("keepalived-conf", KEEPALIVED_CONF, keepalived_conf(cfg, host)),
        HostFile("keepalived-check", CHECK_SCRIPT, script("check_apiserver.sh"), "0755"),
    )
    env = {
        "ADDRESS": str(host.address),
        "IFACE_CONF": KEEPALIVED_IFACE_CONF,
        "HAPROXY_CFG": HAPROXY_CFG,
        "KEEPALIVED_CONF": KEEPALIVED_CONF,
        "CHECK_SCRIPT": CHECK_SCRIPT,
        "FINGERPRINT": fingerprint(files),
    }
    return FileSet(files, ScriptRun("apivip-start", "apivip-start.sh", env, delete_script="apivip-stop.sh"))
