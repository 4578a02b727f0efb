#!/usr/bin/env bash
# End-to-end on kind (machines with a Docker engine and kind): test/e2e/e2e.sh --kind, the same
# steps as on the local real node (test/e2e/e2e.sh --real-node). See test/e2e/e2e.sh --help.
# Usage: test/e2e/kind.sh   (KEEP_CLUSTER=1 leaves the cluster for a look afterwards)
exec bash "$(dirname "${BASH_SOURCE[0]}")/e2e.sh" --kind "$@"
