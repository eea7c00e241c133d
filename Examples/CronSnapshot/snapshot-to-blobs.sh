#!/usr/bin/env bash
# Cron job (see ./crontab): a compressed snapshot of this host's state file, published to the blob
# store, where new hosts find it at boot (./boot-from-blobs.sh).
#
# Environment:
#   WHYCACHE_STATE            the state file this host keeps current (with `follow`, or its workers)
#   WHYCACHE_BLOBS            where snapshots go (here a folder; replace upload/prune for S3, GCS, …)
#   WHYCACHE_SNAPSHOTS_KEPT   how many snapshots to keep besides latest (default 24)
#   WHYCACHE_TOOL             the tool (default: whycache-tool on PATH)
#
# The snapshot is taken from one pinned view while readers and updates on this host go on. It is
# written to a temporary name first and published by renaming, so a host booting at the same
# moment sees the previous snapshot or this one, never half of one; a failed snapshot publishes
# nothing and exits non-zero (cron mails it), leaving the last good one in place.
set -euo pipefail
: "${WHYCACHE_STATE:?the state file}" "${WHYCACHE_BLOBS:?the blob store folder}"
tool=${WHYCACHE_TOOL:-whycache-tool}
kept=${WHYCACHE_SNAPSHOTS_KEPT:-24}

# The two blob-store operations; everything else stays the same on another store.
upload() { # LOCAL_FILE NAME: publish LOCAL_FILE as NAME, atomically
    cp "$1" "$WHYCACHE_BLOBS/.$2.uploading"
    mv -f "$WHYCACHE_BLOBS/.$2.uploading" "$WHYCACHE_BLOBS/$2"
}
prune() { # KEEP: remove all but the newest KEEP numbered snapshots
    find "$WHYCACHE_BLOBS" -maxdepth 1 -name 'snapshot-*.gz' -printf '%f\n' | sort -r | tail -n +$(($1 + 1)) |
        while read -r old; do rm -f "$WHYCACHE_BLOBS/$old"; done
}

mkdir -p "$WHYCACHE_BLOBS"
local_file=$(mktemp "${TMPDIR:-/tmp}/whycache-snapshot.XXXXXX")
trap 'rm -f "$local_file"' EXIT
# "snapshot at update N: K keys, B bytes in PATH"
summary=$("$tool" snapshot --state "$WHYCACHE_STATE" --out "$local_file" --gzip)
update_id=$(echo "$summary" | sed -n 's/^snapshot at update \([0-9]*\):.*/\1/p')
[ -n "$update_id" ] || { echo "snapshot-to-blobs: unexpected output: $summary" >&2; exit 1; }
# Numbered by update id (zero-padded, so that names sort in update order), then latest.
name=$(printf 'snapshot-%020d.gz' "$update_id")
upload "$local_file" "$name"
upload "$local_file" latest.snapshot.gz
prune "$kept"
echo "snapshot at update $update_id published as $name and latest.snapshot.gz"
