#!/usr/bin/env python3
"""A TLS front for a plain-HTTP simulator, so that tests/platforms.sh can run the product over
TLS (ring's random numbers, the handshake, certificate checks) against ess-sim.

    tls-proxy.py CERT KEY BACKEND_PORT

Listens on a free loopback port, prints it on the first line of stdout, and forwards every
connection it accepts (after the TLS handshake) to 127.0.0.1:BACKEND_PORT until either side
closes. Runs until killed.
"""
import socket
import ssl
import sys
import threading


def pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(conn, ctx, backend_port):
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
    except (ssl.SSLError, OSError):
        conn.close()
        return
    try:
        plain = socket.create_connection(("127.0.0.1", backend_port))
    except OSError:
        tls.close()
        return
    back = threading.Thread(target=pipe, args=(plain, tls), daemon=True)
    back.start()
    pipe(tls, plain)
    back.join()
    tls.close()
    plain.close()


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: tls-proxy.py CERT KEY BACKEND_PORT")
    cert, key, backend_port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print(listener.getsockname()[1], flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn, ctx, backend_port), daemon=True).start()


if __name__ == "__main__":
    main()
