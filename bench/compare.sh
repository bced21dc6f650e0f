#!/usr/bin/env bash
# Benchmark: each path of `cargo xtask` next to the tool people would otherwise use on the same data,
# interleaved in one run, with the ratios the targets are about. Figures, not a pass/fail test.
#
# | path                      | anchor                                              | target |
# | copy SQLite -> PostgreSQL | pgloader (Debian package), pg_restore of a pg_dump  | <= 0.33x, <= 1.1x |
# | import JSON -> PostgreSQL | pg_restore --single-transaction of pg_dump -Fc      | <= 1.0x |
# | export PostgreSQL -> JSON | pg_dump, plain format                               | <= 1.0x |
# | import JSON -> SQLite     | our own export of the same SQLite data              | <= 2.0x |
# | export SQLite -> JSON     | sqlite3 -json                                       | <= 1.5x |
# | the same, encrypted (age) | the same export, plain                              |         |
# and the peak memory of each of ours: under 64 MiB, and within 20% of the figure at the first size.
#
# Seeds each size (students; about ten grades each) on SQLite and on an ephemeral PostgreSQL cluster
# it starts itself (stopped and removed at exit), then runs ROUNDS rounds (default 3); in each round
# every path runs next to its anchors, ours first in odd rounds and the anchor first in even ones,
# each into a fresh database. Wall time and peak RSS come from /usr/bin/time. What is missing
# (pgloader, pg_dump, sqlite3, age-keygen, time) is installed with apt-get.
#
# Usage: bench/compare.sh [STUDENTS...]   (default: 10000 100000, and the report is written to
#        bench/RESULTS.md; with sizes given it is only printed)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -gt 0 ]; then
  sizes=("$@")
  results=
else
  sizes=(10000 100000)
  results=bench/RESULTS.md
fi
rounds=${ROUNDS:-3}
port=55439

missing=()
command -v pgloader >/dev/null || missing+=(pgloader)
command -v pg_dump >/dev/null || missing+=(postgresql-client)
command -v sqlite3 >/dev/null || missing+=(sqlite3)
command -v age-keygen >/dev/null || missing+=(age)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

cargo build --release --quiet -p xtask
xtask=$PWD/target/release/xtask

work=$(mktemp -d /tmp/toefl-bench-XXXXXX)
chmod 755 "$work"
as_postgres=()
if [ "$(id -u)" = 0 ]; then
  chown postgres:postgres "$work"
  as_postgres=(runuser -u postgres --)
fi
cleanup() {
  "${as_postgres[@]}" "$bindir/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

"${as_postgres[@]}" "$bindir/initdb" -U postgres -A trust -E UTF8 --locale C -D "$work/data" >/dev/null
"${as_postgres[@]}" "$bindir/pg_ctl" -w -s -D "$work/data" -l "$work/server.log" \
  -o "-k $work -p $port -c listen_addresses=''" start
# A key pair for the encrypted export.
age-keygen -o "$work/key.txt" 2>/dev/null
recipient=$(age-keygen -y "$work/key.txt")
pg_url() { echo "postgresql://postgres@localhost/$1?host=$work&port=$port"; }
psql_admin() { PGOPTIONS='-c client_min_messages=warning' psql -q -d "$(pg_url postgres)" "$@"; }
fresh_pg() { psql_admin -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"; }

# measure NAME COMMAND...: runs the command with its output to $work/out, records "seconds KiB".
declare -A seconds kib
measure() {
  local name=$1
  shift
  if ! /usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$work/out" 2>"$work/err"; then
    echo "$name failed:" >&2
    cat "$work/err" >&2
    exit 1
  fi
  read -r "seconds[$name]" "kib[$name]" <"$work/time"
  rm -f "$work/out"
}

# The runs of one path, each named PATH_N_ROUND; the databases and files they write start fresh.
run() {
  local path=$1 n=$2 r=$3 name="$1_$2_$3"
  case $path in
    sqlite_export) rm -f "$work/export.json"
      measure "$name" "$xtask" export --file "$work/export.json" --database-url "sqlite://$work/seed_$n.db" ;;
    sqlite3_json) measure "$name" sqlite3 -json "$work/seed_$n.db" "$(cat "$work/select.sql")" ;;
    sqlite_export_age) rm -f "$work/export.json.age"
      measure "$name" "$xtask" export --file "$work/export.json.age" --recipient "$recipient" \
        --database-url "sqlite://$work/seed_$n.db" ;;
    pg_export) rm -f "$work/export.json"
      measure "$name" "$xtask" export --file "$work/export.json" --database-url "$(pg_url "seed_$n")" ;;
    pg_dump_plain) measure "$name" pg_dump --file "$work/plain.sql" "$(pg_url "seed_$n")" ;;
    pg_import) fresh_pg target
      measure "$name" "$xtask" import --yes --file "$work/pg_$n.json" --database-url "$(pg_url target)" ;;
    pg_restore) fresh_pg target
      measure "$name" pg_restore --single-transaction --dbname "$(pg_url target)" "$work/pg_$n.dump" ;;
    copy) fresh_pg target
      measure "$name" "$xtask" copy --yes --to "$(pg_url target)" --database-url "sqlite://$work/seed_$n.db" ;;
    pgloader) fresh_pg target
      measure "$name" pgloader "$work/seed_$n.db" "postgresql://postgres@unix:$work:$port/target" ;;
    sqlite_import) rm -f "$work/target.db"
      measure "$name" "$xtask" import --yes --file "$work/sqlite_$n.json" --database-url "sqlite://$work/target.db" ;;
  esac
}

# Each path with its anchor (an anchor already run in the round is not run again).
pairs=("sqlite_export sqlite3_json" "pg_export pg_dump_plain" "pg_import pg_restore"
  "copy pgloader" "sqlite_import sqlite_export" "sqlite_export_age sqlite_export")
for n in "${sizes[@]}"; do
  echo "seeding $n students on SQLite and PostgreSQL..." >&2
  "$xtask" seed --students "$n" --database-url "sqlite://$work/seed_$n.db" 2>/dev/null
  fresh_pg "seed_$n"
  "$xtask" seed --students "$n" --database-url "$(pg_url "seed_$n")" 2>/dev/null
  "$xtask" export --file "$work/sqlite_$n.json" --database-url "sqlite://$work/seed_$n.db" 2>/dev/null
  "$xtask" export --file "$work/pg_$n.json" --database-url "$(pg_url "seed_$n")" 2>/dev/null
  pg_dump -Fc -f "$work/pg_$n.dump" "$(pg_url "seed_$n")"
  # sqlite3 -json over the same tables, in creation order (which is dependency order).
  sqlite3 "$work/seed_$n.db" "SELECT group_concat('SELECT * FROM ' || name || ' ORDER BY id', '; ') || ';' \
    FROM (SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'schema_migrations' ORDER BY rowid)" \
    >"$work/select.sql"
  for r in $(seq 1 "$rounds"); do
    echo "$n students, round $r of $rounds..." >&2
    for pair in "${pairs[@]}"; do
      read -r ours anchor <<<"$pair"
      if [ $((r % 2)) = 1 ]; then order="$ours $anchor"; else order="$anchor $ours"; fi
      for path in $order; do
        [ -n "${seconds[${path}_${n}_$r]:-}" ] || run "$path" "$n" "$r"
      done
    done
  done
  rm -f "$work"/*.json "$work"/*.dump "$work"/*.sql
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# joined PATH N: the figures of every round, "a / b / c".
joined() {
  local out=() r
  for r in $(seq 1 "$rounds"); do out+=("${seconds[$1_$2_$r]}"); done
  local IFS=/
  echo "${out[*]}" | sed 's|/| / |g'
}

report() {
  echo "| students | path | ours: s per round | anchor | anchor: s per round | ratio per round | median ratio | target |"
  echo "| ---: | --- | --- | --- | --- | --- | ---: | ---: |"
  local n line
  for n in "${sizes[@]}"; do
    for line in "copy SQLite → PostgreSQL|copy|pgloader|pgloader|0.33" \
                "copy SQLite → PostgreSQL|copy|pg_restore|pg_restore --single-transaction|1.1" \
                "import JSON → PostgreSQL|pg_import|pg_restore|pg_restore --single-transaction|1.0" \
                "export PostgreSQL → JSON|pg_export|pg_dump_plain|pg_dump (plain)|1.0" \
                "import JSON → SQLite|sqlite_import|sqlite_export|our export of the same SQLite data|2.0" \
                "export SQLite → JSON|sqlite_export|sqlite3_json|sqlite3 -json|1.5" \
                "export SQLite → JSON, encrypted (age)|sqlite_export_age|sqlite_export|the same export, plain|-"; do
      IFS='|' read -r label ours anchor anchor_label target <<<"$line"
      local ratios=() r
      for r in $(seq 1 "$rounds"); do
        ratios+=("$(ratio "${seconds[${ours}_${n}_$r]}" "${seconds[${anchor}_${n}_$r]}")")
      done
      local med
      med=$(median "${ratios[@]}")
      local goal=-
      if [ "$target" != - ]; then
        goal="<= $target ($(awk -v m="$med" -v t="$target" 'BEGIN { print (m <= t) ? "met" : "missed" }'))"
      fi
      echo "| $n | $label | $(joined "$ours" "$n") | $anchor_label | $(joined "$anchor" "$n") | $(echo "${ratios[*]}" | sed 's/ / \/ /g') | $med | $goal |"
    done
  done
  echo
  echo "Peak memory of ours (MiB, the largest of the rounds), and at ${sizes[-1]} students against ${sizes[0]}:"
  echo
  echo "| path | $(printf '%s students | ' "${sizes[@]}")ratio | target |"
  echo "| --- | $(printf -- '---: | %.0s' "${sizes[@]}")---: | --- |"
  local path
  for path in copy pg_import pg_export sqlite_import sqlite_export sqlite_export_age; do
    local row="| $path |" first="" last="" peak
    for n in "${sizes[@]}"; do
      peak=0
      for r in $(seq 1 "$rounds"); do
        [ "${kib[${path}_${n}_$r]}" -gt "$peak" ] && peak=${kib[${path}_${n}_$r]}
      done
      row="$row $(mib "$peak") |"
      [ -n "$first" ] || first=$peak
      last=$peak
    done
    local growth met
    growth=$(ratio "$last" "$first")
    met=$(awk -v g="$growth" -v k="$last" 'BEGIN { print (k < 64 * 1024 && g >= 0.8 && g <= 1.2) ? "met" : "missed" }')
    echo "$row $growth | < 64 MiB, within 20% ($met) |"
  done
}

report | tee "$work/report.md"
if [ -n "$results" ]; then
  {
    echo "# Benchmark results"
    echo
    echo "\`bash bench/compare.sh\` on $(date -u +%Y-%m-%d), release build, $(nproc) cores, PostgreSQL $("$bindir/postgres" --version | awk '{print $3}'),"
    echo "$(pgloader --version | head -n 1 | tr -d '"'), $rounds interleaved rounds; wall seconds and peak RSS from /usr/bin/time."
    echo "Each import, copy and restore goes into a fresh, empty database; ratios are ours over the anchor"
    echo "in the same round."
    echo
    cat "$work/report.md"
  } >"$results"
  echo "written to $results" >&2
fi
