#!/usr/bin/env bash
# Back up the three services' PostgreSQL databases with pg_dump (custom format).
#
#   deploy/backup.sh DIR
#
# Connection: libpq's variables (PGHOST, PGPORT, PGUSER, PGPASSWORD). Database names:
# TJP_CATALOG_DB, TJP_MATCHING_DB, TJP_INDICATORS_DB (default catalog, matching,
# indicators). Writes DIR/<service>.dump and DIR/MANIFEST (sizes, sha256, table of contents
# check). The matching index on disk is not backed up: it is rebuilt from the matching
# database at start-up.
#
# Order: the consumers (matching, indicators) before the catalog, so the catalog's feed in
# the backup reaches at least as far as their cursors. The catalog also follows the
# indicators' deal feed; for a set that is consistent across all three, pause writes (stop
# the proxy or scale the services to zero) while this runs; restore.sh checks the cursors.
set -euo pipefail
out=${1:?usage: deploy/backup.sh DIR}
mkdir -p "$out"
declare -A DB=(
  [catalog]=${TJP_CATALOG_DB:-catalog}
  [matching]=${TJP_MATCHING_DB:-matching}
  [indicators]=${TJP_INDICATORS_DB:-indicators}
)
start=$(date +%s.%N)
{
  echo "# tjp backup $(date -u +%Y-%m-%dT%H:%M:%SZ) server $(psql -XAtc 'SHOW server_version' "${DB[catalog]}")"
} > "$out/MANIFEST"
for svc in matching indicators catalog; do
  t0=$(date +%s.%N)
  pg_dump --format=custom --compress=6 --no-owner --no-privileges \
    --file "$out/$svc.dump" "${DB[$svc]}"
  pg_restore --list "$out/$svc.dump" > /dev/null  # the archive reads back
  size=$(stat -c %s "$out/$svc.dump")
  sum=$(sha256sum "$out/$svc.dump" | cut -d' ' -f1)
  secs=$(awk "BEGIN{printf \"%.2f\", $(date +%s.%N) - $t0}")
  echo "$svc ${DB[$svc]} $size $sum ${secs}s" >> "$out/MANIFEST"
  echo "backed up $svc (${DB[$svc]}): $size bytes in ${secs}s"
done
echo "backup done in $(awk "BEGIN{printf \"%.2f\", $(date +%s.%N) - $start}")s -> $out"
