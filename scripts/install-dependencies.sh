#!/usr/bin/env bash
# Installs, with apt-get, the Debian packages WhyCache needs that are missing.
#
#   install-dependencies.sh            what building needs: pkg-config, libmariadb-dev (the
#                                      client library the WhyCacheMySQL target links against)
#                                      and zlib1g-dev (gzip compression of snapshots)
#   install-dependencies.sh --server   also what the tests need: mariadb-server-core (mariadbd)
#                                      and mariadb-client (mariadb, mariadb-admin), used by
#                                      scripts/mariadb-server.sh, and python3 (the fault-injection
#                                      harness, scripts/soak.py)
#
# Installing needs root; run as another user, it lists what is missing and fails.
set -euo pipefail
PATH=$PATH:/usr/sbin:/sbin # mariadbd is in /usr/sbin, not on an ordinary user's PATH

command -v swift >/dev/null || { echo "swift is required (Swift 6.0 or later)" >&2; exit 1; }
need=()
command -v pkg-config >/dev/null || need+=(pkg-config)
{ command -v pkg-config >/dev/null && pkg-config --exists libmariadb; } || need+=(libmariadb-dev)
{ command -v pkg-config >/dev/null && pkg-config --exists zlib; } || need+=(zlib1g-dev)
if [ "${1:-}" = --server ]; then
    command -v mariadbd >/dev/null || need+=(mariadb-server-core)
    { command -v mariadb >/dev/null && command -v mariadb-admin >/dev/null; } || need+=(mariadb-client)
    command -v python3 >/dev/null || need+=(python3)
fi
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then echo "please install: ${need[*]}" >&2; exit 1; fi
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
