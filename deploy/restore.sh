#!/usr/bin/env bash
# Restore a deploy/backup.sh backup into NEW databases, then check the feed cursors.
#
#   deploy/restore.sh DIR
#
# Connection and names as in backup.sh (TJP_CATALOG_DB, TJP_MATCHING_DB,
# TJP_INDICATORS_DB). Each database is created here and must not exist: a restore never
# writes over live data (drop or rename the old one first, deliberately). Each restore is
# one transaction. Then start the services on the restored databases: they find their
# migrations applied, and matching rebuilds its index from its database.
#
# Exit 3 when a consumer's cursor is past the end of the feed it follows in the restored
# set (the backup was taken while writes went on; see backup.sh).
set -euo pipefail
dir=${1:?usage: deploy/restore.sh DIR}
declare -A DB=(
  [catalog]=${TJP_CATALOG_DB:-catalog}
  [matching]=${TJP_MATCHING_DB:-matching}
  [indicators]=${TJP_INDICATORS_DB:-indicators}
)
start=$(date +%s.%N)
for svc in catalog matching indicators; do
  want=$(awk -v s="$svc" '$1 == s {print $4}' "$dir/MANIFEST")
  have=$(sha256sum "$dir/$svc.dump" | cut -d' ' -f1)
  [ "$want" = "$have" ] || { echo "$svc.dump does not match its MANIFEST checksum" >&2; exit 2; }
done
for svc in catalog matching indicators; do
  t0=$(date +%s.%N)
  createdb "${DB[$svc]}"
  pg_restore --no-owner --no-privileges --exit-on-error --single-transaction \
    --dbname "${DB[$svc]}" "$dir/$svc.dump"
  echo "restored $svc into ${DB[$svc]} in $(awk "BEGIN{printf \"%.2f\", $(date +%s.%N) - $t0}")s"
done

q() { psql -XAtq -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
head_of() { q "${DB[$1]}" "SELECT coalesce(max(id), 0) FROM feed_entry"; }
cursor_of() { q "${DB[$1]}" "SELECT coalesce(max(position), 0) FROM feed_cursor WHERE source = '$2'"; }
status=0
for pair in matching:catalog indicators:catalog indicators:matching catalog:indicators; do
  consumer=${pair%%:*}; source=${pair##*:}
  at=$(cursor_of "$consumer" "$source"); end=$(head_of "$source")
  if [ "$at" -gt "$end" ]; then
    echo "INCONSISTENT: $consumer follows $source at $at, but $source's feed ends at $end" >&2
    status=3
  else
    echo "cursor ok: $consumer follows $source at $at of $end"
  fi
done
echo "restore done in $(awk "BEGIN{printf \"%.2f\", $(date +%s.%N) - $start}")s"
exit $status
