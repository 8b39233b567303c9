#!/usr/bin/env bash
# Copy new backup files (never changed once written) to the S3 vault with rclone, then
# record the success time for node_exporter's textfile collector.
# Installed as /usr/local/sbin/seoul-backup-ship; run by seoul-backup-<job>.service.
# Parameters: JOB SOURCE_DIR INCLUDE DEST RCLONE_CONFIG BWLIMIT TEXTFILE_DIR PERIOD_SECONDS
#             RECORD_SUCCESS (default 1; 0 from a job that failed in part: the success time
#             stays as it was, and a first run exports only the period, so the freshness
#             alerts still fire)
# Metrics (render/alerts.py contract): label `backup`, since Prometheus owns `job`.
# The credentials are in RCLONE_CONFIG (0600, root), never on a command line.
set -euo pipefail
: "${JOB:?}" "${SOURCE_DIR:?}" "${INCLUDE:?}" "${DEST:?}" "${RCLONE_CONFIG:?}" "${BWLIMIT:?}" "${TEXTFILE_DIR:?}"
: "${PERIOD_SECONDS:?}"

if [[ -d "$SOURCE_DIR" ]]; then
  # --ignore-existing: copies are immutable (Object Lock), and the writer cannot read them back.
  rclone copy "$SOURCE_DIR" "$DEST" --config "$RCLONE_CONFIG" --include "$INCLUDE" \
    --ignore-existing --bwlimit "$BWLIMIT" --retries 5 --low-level-retries 10 --stats-one-line -v
else
  echo "no $SOURCE_DIR yet: nothing to copy"
fi

metrics="$TEXTFILE_DIR/seoul_backup_$JOB.prom"
if [[ "${RECORD_SUCCESS:-1}" == 0 && -e "$metrics" ]]; then
  echo "shipped what there was of $JOB to $DEST; its last success time is unchanged"
  exit 0
fi
mkdir -p "$TEXTFILE_DIR"
tmp="$(mktemp "$metrics.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
{
  if [[ "${RECORD_SUCCESS:-1}" != 0 ]]; then
    echo "# HELP seoul_backup_last_success_timestamp_seconds Unix time of the last successful off-site backup."
    echo "# TYPE seoul_backup_last_success_timestamp_seconds gauge"
    echo "seoul_backup_last_success_timestamp_seconds{backup=\"$JOB\"} $(date +%s)"
  fi
  echo "# HELP seoul_backup_period_seconds How often the backup should succeed."
  echo "# TYPE seoul_backup_period_seconds gauge"
  echo "seoul_backup_period_seconds{backup=\"$JOB\"} $PERIOD_SECONDS"
} >"$tmp"
chmod 0644 "$tmp"
mv "$tmp" "$metrics"
echo "shipped $JOB to $DEST"
