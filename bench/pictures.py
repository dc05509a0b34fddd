"""A loopback picture server whose every copy is distinct bytes, so that each
updateHeadImg is a full render (the server reuses the avatar of bytes it has
seen, by their hash):

    python3 bench/pictures.py DIR [PORT]

GET /<n>/<name> answers the file <name> of DIR followed by "#<n>" (eight
digits): after a JPEG's end-of-image marker or a PNG's IEND chunk, so every
copy decodes to the same pixels. Like nginx serving a static file, it sends a
strong ETag ("<n>-<length>" in hex) and answers 304 to a request whose
If-None-Match names it; GET /plain/<n>/<name> is the same copy without an ETag
(a server that sends no validators). GET / answers 200 (for readiness checks).
Listens on 127.0.0.1:PORT, by default a free port, and prints the port on a
line once it listens. Files are read once; keep-alive HTTP/1.1; standard
library only; runs until it is stopped.
"""

import os
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH = re.compile(r"^(/plain)?/(\d{1,8})/([\w.-]+)$")
TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}


def main():
    folder = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    files = {name: open(os.path.join(folder, name), "rb").read()
             for name in os.listdir(folder) if os.path.splitext(name)[1] in TYPES}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body are two writes: without this the body can wait for
        # the client's delayed ACK.
        disable_nagle_algorithm = True

        def do_GET(self):
            match = PATH.match(self.path)
            if self.path == "/":
                body, kind = b"ok", "text/plain"
            elif match and match.group(3) in files:
                name = match.group(3)
                body = files[name] + b"#%08d" % int(match.group(2))
                kind = TYPES[os.path.splitext(name)[1]]
            else:
                self.send_error(404)
                return
            etag = None
            if match and not match.group(1):
                etag = '"%x-%x"' % (int(match.group(2)), len(body))
            if etag and self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(200)
            if etag:
                self.send_header("ETag", etag)
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
