#!/bin/sh
# Checks every EWS request the client can send (tests/fixtures/ews/requests, kept in step with
# the builders by tests/ews.rs) and the documented response fixtures the parser is tested with
# against Microsoft's EWS schemas. The validator lives next to the repository in CI; set
# EWS_VALIDATE to use another copy.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
validator=${EWS_VALIDATE:-"$root/../shared/tools/ews-validate"}
if [ ! -x "$validator" ]; then
    echo "ews-validate-fixtures: validator not found at $validator (set EWS_VALIDATE)" >&2
    exit 2
fi
exec "$validator" "$root"/tests/fixtures/ews/requests/*.xml "$root"/tests/fixtures/ews/responses/*.xml
