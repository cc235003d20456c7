#!/bin/sh
# The console's container entrypoint: apply migrations (under the advisory lock, so replicas
# starting together are safe), then become the server. A failed migration fails the container.
set -eu
/usr/local/bin/flovyn-app migrate
exec /usr/local/bin/flovyn-app serve "$@"
