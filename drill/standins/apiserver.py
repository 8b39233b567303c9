"""TLS stand-in for a control-plane component: answers GET /healthz, /livez and /readyz
with 200 "ok <name>" on one port (0.0.0.0), like kube-apiserver (6443),
kube-controller-manager (10257) or kube-scheduler (10259) do for their health endpoints.

Usage: python apiserver.py NAME PORT CERT KEY   (runs until killed; stdlib only)
"""

import http.server
import ssl
import sys


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.split("?")[0] in ("/healthz", "/livez", "/readyz"):
            body = f"ok {self.server.name}\n".encode()
            self.send_response(200)
        else:
            body = b"not found\n"
            self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet: the drill's client logs every request
        pass


def main() -> None:
    name, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    # every address of its own lab host: the node address for HAProxy, 127.0.0.1 for the checks
    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Health)  # noqa: S104
    server.name = name
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"{name} serving TLS on :{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
