"""A loopback picture server whose every copy is distinct bytes, so that each
updateHeadImg is a full render (the server reuses the avatar of bytes it has
seen, by their hash):

    python3 bench/pictures.py DIR [PORT]

GET /<n>/<name> answers the file <name> of DIR followed by "#<n>" (eight
digits): after a JPEG's end-of-image marker or a PNG's IEND chunk, so every
copy decodes to the same pixels. GET / answers 200 (for readiness checks).
Listens on 127.0.0.1:PORT, by default a free port, and prints the port on a
line once it listens. Files are read once; keep-alive HTTP/1.1; standard
library only; runs until it is stopped.
"""

import os
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH = re.compile(r"^/(\d{1,8})/([\w.-]+)$")
TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}


def main():
    folder = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    files = {name: open(os.path.join(folder, name), "rb").read()
             for name in os.listdir(folder) if os.path.splitext(name)[1] in TYPES}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            match = PATH.match(self.path)
            if self.path == "/":
                body, kind = b"ok", "text/plain"
            elif match and match.group(2) in files:
                name = match.group(2)
                body = files[name] + b"#%08d" % int(match.group(1))
                kind = TYPES[os.path.splitext(name)[1]]
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
