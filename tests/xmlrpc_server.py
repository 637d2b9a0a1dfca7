#!/usr/bin/env python3
"""A stock XML-RPC server (Python standard library only) standing in for a STARFACE module
entry point, to prove that exchange-status-sync's chat call is standard XML-RPC.

Usage: xmlrpc_server.py METHOD_NAME
Prints the port it listens on (loopback, ephemeral) as the first line of stdout, then one JSON
line per call: the query string of the request and each struct member with its Python type.
AccountID 13 raises a fault, to test the fault path.
"""

import json
import sys
from urllib.parse import urlsplit
from xmlrpc.client import Fault
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

LAST_QUERY = {"query": ""}


class Handler(SimpleXMLRPCRequestHandler):
    rpc_paths = ("/xml-rpc",)

    def is_rpc_path_valid(self):
        # STARFACE passes the authentication in the query string; the path decides the endpoint.
        parts = urlsplit(self.path)
        LAST_QUERY["query"] = parts.query
        return parts.path in self.rpc_paths

    def log_message(self, format, *args):
        pass


def set_chat_presence(params):
    record = {
        "query": LAST_QUERY["query"],
        "members": {k: {"type": type(v).__name__, "value": v} for k, v in params.items()},
    }
    print(json.dumps(record), flush=True)
    if params.get("AccountID") == 13:
        raise Fault(13, "user 13 is <locked> & gesperrt: ä")
    return True


def main():
    method = sys.argv[1]
    server = SimpleXMLRPCServer(("127.0.0.1", 0), requestHandler=Handler, logRequests=False)
    server.register_function(set_chat_presence, method)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
