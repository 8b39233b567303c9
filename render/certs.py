"""Certificate expiry export: systemd units for scripts/cert-expiry.sh on every host with certificates."""

from render.files import FileSet, HostFile, script, timer_unit, timers, unit_path

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
    return timer_unit("Hourly certificate expiry export", "hourly", "300", on_boot="5min")


def expiry_export() -> FileSet:
    """The script, its hourly timer, and the step that enables the timer and runs it once."""
    files = (
        HostFile("cert-expiry-script", EXPIRY_SCRIPT, script("cert-expiry.sh"), "0755"),
        HostFile("cert-expiry-service", unit_path("cert-expiry.service"), expiry_service()),
        HostFile("cert-expiry-timer", unit_path("cert-expiry.timer"), expiry_timer()),
    )
    return timers("cert-expiry-timer-enable", files, ["cert-expiry.timer"], run_now="cert-expiry.service")
