"""A bounded stream of HTTPS requests, one at a time, as a client of the API VIP would make.

Usage: python client.py URL OUT INTERVAL_S TIMEOUT_S MAX_REQUESTS MAX_SECONDS STOP_FILE
Writes one JSON line per request to OUT: {"start", "end" (unix time, s), "ok", "body",
"error"}. Stops after MAX_REQUESTS, after MAX_SECONDS, or when STOP_FILE exists.
The server certificate is not verified (the stand-ins' certificates are self-signed);
the drill measures reachability, not trust.
"""

import json
import os
import ssl
import sys
import time
import urllib.request


def main() -> None:
    url, out, interval, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    max_requests, max_seconds, stop_file = int(sys.argv[5]), float(sys.argv[6]), sys.argv[7]
    if not url.startswith("https://"):
        sys.exit(f"client.py: {url} is not an https:// URL")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + max_seconds
    with open(out, "a", buffering=1) as fh:
        for _ in range(max_requests):
            if time.monotonic() > deadline or os.path.exists(stop_file):
                break
            start = time.time()
            record = {"start": start, "ok": False, "body": "", "error": ""}
            try:
                with urllib.request.urlopen(url, timeout=timeout, context=context) as resp:  # noqa: S310 - https only
                    record["body"] = resp.read().decode().strip()
                    record["ok"] = resp.status == 200
            except Exception as exc:  # every failure is data here
                record["error"] = f"{type(exc).__name__}: {exc}"
            record["end"] = time.time()
            fh.write(json.dumps(record) + "\n")
            time.sleep(max(0.0, interval - (record["end"] - start)))


if __name__ == "__main__":
    main()
