"""An https file server on 127.0.0.1 for the downloads that do not go through the hub."""
import http.server
import threading
from pathlib import Path


class CDN:
    """A download site outside the hub rehearsed (OpenAI's CDN for the dVAE, Dropbox for MVDiffusion): the files of
    ``folder`` served over https from 127.0.0.1 with a certificate made for the test, trusted through SSL_CERT_FILE;
    ``redirect`` answers every request with a 302 to that address instead. ``requests``: the paths asked for."""

    def __init__(self, folder: Path, tmp_path: Path, redirect: str | None = None):
        import ssl
        import subprocess

        cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                        "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out",
                        str(cert)], check=True, capture_output=True)
        self.cert, self.requests = cert, []
        cdn = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **k):
                super().__init__(*a, directory=str(folder), **k)

            def do_GET(self):
                if redirect:
                    cdn.requests.append(self.path)
                    self.send_response(302)
                    self.send_header("Location", redirect + self.path)
                    self.end_headers()
                    return
                super().do_GET()

            def log_message(self, *a):
                if not redirect:
                    cdn.requests.append(a[1])

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"https://127.0.0.1:{self.server.server_port}/"

    def close(self):
        self.server.shutdown()
        self.server.server_close()
