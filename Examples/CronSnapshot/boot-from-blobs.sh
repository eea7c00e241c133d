#!/usr/bin/env bash
# At boot, before the workers start: bring this host's state file up to date from the newest
# snapshot in the blob store and the log after it, falling back to the whole log.
#
# Environment:
#   WHYCACHE_STORE   the log (file:///… or mysql://…; the MySQL password in WHYCACHE_MYSQL_PASSWORD)
#   WHYCACHE_STATE   the state file the workers will open
#   WHYCACHE_BLOBS   where ./snapshot-to-blobs.sh publishes snapshots (replace download for S3, …)
#   WHYCACHE_TOOL    the tool (default: whycache-tool on PATH)
#
# 1. A state file that is already there (the service restarted; the host did not reboot) only
#    catches up with the log; one that cannot be updated is moved aside (`.unusable`).
# 2. Otherwise the newest snapshot is restored — checked whole before anything is installed — and
#    `update` applies the log after its update id (or rebuilds from the log's checkpoint when the
#    history after it was rewritten).
# 3. With no snapshot, or one that cannot be used (damaged, truncated), the state is built from
#    the whole log: slower, never wrong. Exit status 0 means the state file is current.
set -euo pipefail
: "${WHYCACHE_STORE:?the log}" "${WHYCACHE_STATE:?the state file}" "${WHYCACHE_BLOBS:?the blob store folder}"
tool=${WHYCACHE_TOOL:-whycache-tool}
say() { echo "boot-from-blobs: $*" >&2; }

download() { # NAME LOCAL_FILE: fetch NAME, or fail when there is none
    cp "$WHYCACHE_BLOBS/$1" "$2" 2>/dev/null
}
update() {
    "$tool" update --store "$WHYCACHE_STORE" --state "$WHYCACHE_STATE"
}

if [ -e "$WHYCACHE_STATE" ]; then
    say "a state file is there: catching up with the log"
    if update; then exit 0; fi
    # No worker runs yet, so nobody holds it: keep it for a post-mortem and start afresh.
    say "it cannot be updated (see above): moved to $WHYCACHE_STATE.unusable"
    mv -f "$WHYCACHE_STATE" "$WHYCACHE_STATE.unusable"
fi
local_file=$(mktemp "${TMPDIR:-/tmp}/whycache-snapshot.XXXXXX")
trap 'rm -f "$local_file"' EXIT
if download latest.snapshot.gz "$local_file"; then
    if "$tool" restore --from "$local_file" --state "$WHYCACHE_STATE" >&2; then
        say "restored the newest snapshot: applying the log after it"
        update
        exit 0
    fi
    say "the newest snapshot cannot be used (see above): building the state from the whole log"
else
    say "no snapshot in $WHYCACHE_BLOBS: building the state from the whole log"
fi
update
