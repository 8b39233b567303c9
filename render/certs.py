"""Certificate expiry export: systemd units for scripts/cert-expiry.sh on every host with certificates."""

TEXTFILE_DIR = "/var/lib/node_exporter/textfile"
EXPIRY_METRICS = f"{TEXTFILE_DIR}/cert_expiry.prom"
EXPIRY_SCRIPT = "/usr/local/sbin/seoul-cert-expiry"


def expiry_service() -> str:
    return f"""\
[Unit]
Description=Export certificate expiry times for the node_exporter textfile collector

[Service]
Type=oneshot
Environment=OUTPUT={EXPIRY_METRICS}
ExecStart={EXPIRY_SCRIPT}
"""


def expiry_timer() -> str:
    return """\
[Unit]
Description=Hourly certificate expiry export

[Timer]
OnBootSec=5min
OnCalendar=hourly
RandomizedDelaySec=300
Persistent=true

[Install]
WantedBy=timers.target
"""
