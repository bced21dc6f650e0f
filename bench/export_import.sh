#!/usr/bin/env bash
# Benchmark of `cargo xtask export` and `import` on both backends, next to the native tools on the
# same data: sqlite3 -json, pg_dump and pg_restore. Figures, not a pass/fail test.
#
# Seeds 10,000 and 100,000 students (about 100,000 and 1,000,000 grades) on SQLite and on an
# ephemeral PostgreSQL cluster that it starts itself (and stops and removes at exit), then prints the
# wall time and peak RSS of each run, and the ratios. The SQLite export runs a second time encrypted
# with age (needs age-keygen, Debian package age), next to the plain one.
#
# Usage: bench/export_import.sh [STUDENTS...]   (default: 10000 100000)
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=("${@:-10000 100000}")
read -r -a sizes <<<"${sizes[*]}"
bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
port=55439

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
createdb() { psql -q -d "$(pg_url postgres)" -c "CREATE DATABASE $1"; }

# measure NAME COMMAND...: runs the command with stdout to $work/NAME.out, records "seconds KiB".
declare -A seconds kib
measure() {
  local name=$1
  shift
  if ! /usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$work/$name.out" 2>"$work/err"; then
    cat "$work/err" >&2
    exit 1
  fi
  read -r seconds[$name] kib[$name] <"$work/time"
  rm -f "$work/$name.out"
}

for n in "${sizes[@]}"; do
  echo "seeding $n students on SQLite and PostgreSQL..." >&2
  sqlite_db="$work/seed_$n.db"
  "$xtask" seed --students "$n" --database-url "sqlite://$sqlite_db" 2>/dev/null
  createdb "seed_$n"
  "$xtask" seed --students "$n" --database-url "$(pg_url "seed_$n")" 2>/dev/null

  # SQLite export, and sqlite3 -json over the same tables (in creation order, which is dependency order).
  select=$(sqlite3 "$sqlite_db" "SELECT group_concat('SELECT * FROM ' || name || ' ORDER BY id', '; ') FROM \
    (SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'schema_migrations' ORDER BY rowid)")
  measure "sqlite_export_$n" "$xtask" export --file "$work/sqlite_$n.json" --database-url "sqlite://$sqlite_db"
  measure "sqlite3_json_$n" sqlite3 -json "$sqlite_db" "$select;"
  measure "sqlite_export_age_$n" "$xtask" export --file "$work/sqlite_$n.json.age" \
    --recipient "$recipient" --database-url "sqlite://$sqlite_db"

  # PostgreSQL export, and pg_dump of the same database in custom format.
  measure "pg_export_$n" "$xtask" export --file "$work/pg_$n.json" --database-url "$(pg_url "seed_$n")"
  measure "pg_dump_$n" pg_dump -Fc -f "$work/pg_$n.dump" "$(pg_url "seed_$n")"

  # Imports into empty databases: the xtask creates the schema, pg_restore creates it from the dump.
  createdb "import_$n"
  measure "pg_import_$n" "$xtask" import --yes --file "$work/pg_$n.json" --database-url "$(pg_url "import_$n")"
  createdb "restore_$n"
  measure "pg_restore_$n" pg_restore --single-transaction -d "$(pg_url "restore_$n")" "$work/pg_$n.dump"
  measure "sqlite_import_$n" "$xtask" import --yes --file "$work/sqlite_$n.json" --database-url "sqlite://$work/import_$n.db"
  grades=$(sqlite3 "$sqlite_db" "SELECT count(*) FROM grades")
  echo "$n students, $grades grades: export file $(du -h "$work/sqlite_$n.json" | cut -f1)" >&2
  rm -f "$work"/*.json "$work"/*.json.age "$work/pg_$n.dump"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
echo
echo "| students | operation | xtask s | xtask MiB | reference | ref s | ref MiB | time ratio |"
echo "| ---: | --- | ---: | ---: | --- | ---: | ---: | ---: |"
for n in "${sizes[@]}"; do
  for pair in "sqlite_export sqlite3_json SQLite export|sqlite3 -json" \
              "sqlite_export_age sqlite_export SQLite export, encrypted|the same, plain" \
              "pg_export pg_dump PostgreSQL export|pg_dump -Fc" \
              "pg_import pg_restore PostgreSQL import|pg_restore --single-transaction" \
              "sqlite_import - SQLite import|-"; do
    read -r ours ref labels <<<"$pair"
    label=${labels%%|*}
    ref_label=${labels#*|}
    a=${seconds[${ours}_$n]}
    if [ "$ref" = - ]; then
      echo "| $n | $label | $a | $(mib "${kib[${ours}_$n]}") | - | - | - | - |"
    else
      b=${seconds[${ref}_$n]}
      echo "| $n | $label | $a | $(mib "${kib[${ours}_$n]}") | $ref_label | $b | $(mib "${kib[${ref}_$n]}") | $(ratio "$a" "$b") |"
    fi
  done
done
if [ "${#sizes[@]}" -ge 2 ]; then
  small=${sizes[0]}
  large=${sizes[-1]}
  echo
  echo "Peak memory, $large students vs $small (1.00 = flat):"
  for op in sqlite_export sqlite_export_age pg_export pg_import sqlite_import; do
    echo "- $op: $(mib "${kib[${op}_$large]}") MiB vs $(mib "${kib[${op}_$small]}") MiB, ratio $(ratio "${kib[${op}_$large]}" "${kib[${op}_$small]}")"
  done
fi
