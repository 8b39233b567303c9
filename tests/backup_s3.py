"""An S3 API on loopback over TLS (moto's server) for the restore tests, bounded and stopped."""

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.tools import require_tool, unavailable

REGION = "ap-northeast-2"
# moto accepts any credentials; these are the writer's as the rendered config carries them.
ACCESS_KEY = "AKIASEOULBACKUPTEST1"
SECRET_KEY = "seoul-backup-test-secret-not-real"


@dataclass(frozen=True)
class S3Lab:
    endpoint: str  # https://127.0.0.1:<port>
    ca_cert: Path  # the CA that signed the server certificate
    bucket: str
    kms_key_arn: str

    def client(self, service: str = "s3"):
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION, verify=str(self.ca_cert),
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)


# moto's server (moto.server.main) answering HTTP/1.1 with a Content-Length on every reply and
# closing TLS with close_notify: werkzeug closes each connection, and one closed without
# close_notify is "unexpected eof" to pgBackRest (OpenSSL 3).
SERVE = """
import sys
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import WSGIRequestHandler, run_simple

class Handler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"

    def finish(self):
        super().finish()
        try:  # werkzeug closes every connection: say so in TLS (close_notify), as S3 does
            self.connection.settimeout(2)
            self.connection.unwrap()
        except Exception:
            pass

moto = DomainDispatcherApplication(create_backend_app)

def app(environ, start_response):
    reply = {}
    def capture(status, headers, exc_info=None):
        reply["status"], reply["headers"] = status, headers
    body = b"".join(moto(environ, capture))
    headers = reply["headers"]
    if not (environ["REQUEST_METHOD"] == "HEAD" and any(k.lower() == "content-length" for k, _ in headers)):
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
    start_response(reply["status"], headers)
    return [body]

port, cert, key = sys.argv[1:]
run_simple("127.0.0.1", int(port), app, threaded=True, ssl_context=(cert, key), request_handler=Handler)
"""


def _certificates(tmp: Path) -> tuple[Path, Path, Path]:
    openssl = require_tool("openssl")
    ca_key, ca, key, csr, cert = (tmp / n for n in ("ca.key", "ca.crt", "s3.key", "s3.csr", "s3.crt"))
    steps = [
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
         "-subj", "/CN=seoul backup test CA", "-keyout", ca_key, "-out", ca],
        [openssl, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", csr],
        [openssl, "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "1",
         "-extfile", "/dev/stdin", "-out", cert],
    ]
    for step in steps:
        # pgBackRest 2.45 matches only DNS names (and the CN), so the address is a DNS name too.
        ext = "subjectAltName=IP:127.0.0.1,DNS:127.0.0.1\nextendedKeyUsage=serverAuth\n" if "-extfile" in step else None
        proc = subprocess.run([str(s) for s in step], input=ext, capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
    return ca, cert, key


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def s3_lab(tmp: Path, bucket: str) -> Iterator[S3Lab]:
    """moto_server on 127.0.0.1 over TLS with `bucket` (versioned, Object Lock) and a KMS key."""
    try:
        import moto.server  # noqa: F401
    except ImportError:
        unavailable("moto is not installed (requirements.txt)")
    ca, cert, key = _certificates(tmp)
    port = _free_port()
    log = (tmp / "moto.log").open("w")
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(port), str(cert), str(key)],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        endpoint = f"https://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            assert proc.poll() is None and time.monotonic() < deadline, (tmp / "moto.log").read_text()
            time.sleep(0.2)
        lab = S3Lab(endpoint, ca, bucket, "")
        lab.client().create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True,
                                   CreateBucketConfiguration={"LocationConstraint": REGION})
        arn = lab.client("kms").create_key(Description="seoul backup test")["KeyMetadata"]["Arn"]
        yield S3Lab(endpoint, ca, bucket, arn)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
