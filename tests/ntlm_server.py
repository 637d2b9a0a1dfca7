#!/usr/bin/env python3
"""An HTTP server that authenticates with pyspnego's NTLM acceptor, an implementation of NTLM
independent of the product's, for the interoperability tests (tests/ntlm_pyspnego.rs).

Users come from the file named by NTLM_USER_FILE (`DOMAIN:USER:PASSWORD` lines, or
`:user@domain:PASSWORD` for a UPN). Like IIS, it authenticates the connection: a 401 offers the
schemes, NEGOTIATE gets a CHALLENGE, AUTHENTICATE gets 200 for the request that carried it, and
later requests on the same connection need no Authorization. A failed AUTHENTICATE gets 401.

Arguments: SCHEMES (comma separated, e.g. "Negotiate,NTLM" or "Negotiate"), then optionally
`--cbt-hex HEX` (the tls-server-end-point hash the client must bind to) and `--tls CERT KEY`
(serve HTTPS; the channel binding is then computed here from CERT, an ECDSA P-256/SHA-256 or
RSA/SHA-256 certificate, whose end-point hash is SHA-256), and `--upstream URL USER PASSWORD`
(once authenticated, forward each request to URL with Basic credentials, e.g. to the EWS fake
of ess-sim, so that the product's real binary gets real EWS answers; without it the body is
echoed).

Prints the port on the first line, then one line per authentication: `ok PRINCIPAL` or
`fail REASON`. Exits 3 when pyspnego is not importable, so the test can skip with a notice.
"""
import base64
import hashlib
import urllib.error
import urllib.request
import http.server
import socketserver
import ssl
import sys

try:
    import spnego
    from spnego.channel_bindings import GssChannelBindings
except ImportError:
    print("no-pyspnego", flush=True)
    sys.exit(3)

SCHEMES = sys.argv[1].split(",")
CBT = None
TLS = None
UPSTREAM = None
args = sys.argv[2:]
while args:
    if args[0] == "--cbt-hex":
        CBT = bytes.fromhex(args[1])
        args = args[2:]
    elif args[0] == "--tls":
        TLS = (args[1], args[2])
        with open(args[1]) as f:
            der = ssl.PEM_cert_to_DER_cert(f.read())
        CBT = hashlib.sha256(der).digest()
        args = args[3:]
    elif args[0] == "--upstream":
        UPSTREAM = (args[1], args[2], args[3])
        args = args[4:]
    else:
        sys.exit("unknown argument " + args[0])


def answer(body, headers):
    """What an authenticated request gets: the upstream's answer, or the body echoed."""
    if UPSTREAM is None:
        return 200, "text/plain", b"echo:" + body
    url, user, password = UPSTREAM
    basic = base64.b64encode((user + ":" + password).encode()).decode()
    forward = {"Authorization": "Basic " + basic}
    for name in ("Content-Type", "SOAPAction", "Accept", "X-AnchorMailbox"):
        if headers.get(name):
            forward[name] = headers.get(name)
    request = urllib.request.Request(url, data=body, headers=forward, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.headers.get("Content-Type", "text/xml"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", "text/plain"), e.read()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.ctx = None
        self.authenticated = False

    def log_message(self, *args):
        pass

    def reply(self, status, headers, body=b""):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def offer(self):
        self.reply(401, [("WWW-Authenticate", s) for s in SCHEMES])

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if self.authenticated:
            return self.serve(body)
        auth = self.headers.get("Authorization")
        if not auth:
            return self.offer()
        scheme, _, token = auth.partition(" ")
        if scheme not in SCHEMES:
            print("fail scheme " + scheme, flush=True)
            return self.offer()
        token = base64.b64decode(token)
        try:
            if token[8:12] == b"\x01\x00\x00\x00":
                bindings = None
                if CBT is not None:
                    bindings = GssChannelBindings(
                        application_data=b"tls-server-end-point:" + CBT)
                self.ctx = spnego.server(protocol="ntlm", channel_bindings=bindings)
                out = self.ctx.step(token)
                return self.reply(401, [("WWW-Authenticate",
                                         scheme + " " + base64.b64encode(out).decode())])
            if self.ctx is None:
                raise ValueError("AUTHENTICATE without NEGOTIATE on this connection")
            self.ctx.step(token)
            if not self.ctx.complete:
                raise ValueError("context not complete")
        except Exception as e:  # Any refusal by the acceptor is a failed authentication.
            self.ctx = None
            print("fail " + type(e).__name__ + ": " + str(e).replace("\n", " "), flush=True)
            return self.offer()
        self.authenticated = True
        print("ok " + str(self.ctx.client_principal), flush=True)
        self.serve(body)

    def serve(self, body):
        status, content_type, payload = answer(body, self.headers)
        self.reply(status, [("Content-Type", content_type)], payload)

    do_GET = do_POST


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


server = Server(("127.0.0.1", 0), Handler)
if TLS:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(TLS[0], TLS[1])
    server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
