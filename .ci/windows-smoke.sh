#!/usr/bin/env bash
# The Windows build, proven on Linux: cross-compiles xtask.exe for x86_64-pc-windows-gnu (after
# clippy for that target) and runs it under Wine, on SQLite and over TCP on PostgreSQL, comparing what
# it writes with what the Linux build writes from the same seed. Then runs the README's Windows
# commands (cmd, and the Task Scheduler's) under Wine's cmd. Prints how long each part took.
#
# Installs what is missing: the rustup target, mingw (the bundled SQLite and zstd are C) and wine64.
# Debian 12's Wine 8 lacks bcryptprimitives.dll, whose ProcessPrng every Rust program for Windows
# imports: .ci/bcryptprimitives.c is a stand-in, built here with the same mingw.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=x86_64-pc-windows-gnu

clock() { date +%s%3N; }
started=$(clock)
part_started=$started
# part NAME: prints how long the part that just ended took.
part() {
  local now
  now=$(clock)
  printf 'windows-smoke: %-28s %5d.%01d s\n' "$1" $(((now - part_started) / 1000)) $(((now - part_started) % 1000 / 100))
  part_started=$now
}
fail() {
  echo "windows-smoke: FAILED: $*" >&2
  exit 1
}

# --- What is missing gets installed -----------------------------------------------------------
rustup target list --installed | grep -qx "$target" || rustup target add "$target"
missing=()
command -v x86_64-w64-mingw32-gcc >/dev/null || missing+=(gcc-mingw-w64-x86-64)
[ -x /usr/lib/wine/wine64 ] || missing+=(wine64)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
part "install what is missing"

# --- Build ------------------------------------------------------------------------------------
# clippy-driver as the workspace's compiler: one build lints every target (warnings are errors) and
# makes xtask.exe. `cargo clippy` and then `cargo build` would compile every dependency twice: in CI
# 200 s instead of 100 s.
RUSTC_WORKSPACE_WRAPPER="$(rustc --print sysroot)/bin/clippy-driver" \
  CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUSTFLAGS="-D warnings" \
  cargo build --quiet --workspace --all-targets --target "$target"
cargo build --quiet -p xtask
part "clippy and build for Windows"

work=$(mktemp -d /tmp/toefl-windows-XXXXXX)
chmod 755 "$work"
pg_stop=:
cleanup() {
  $pg_stop
  WINEPREFIX=$work/prefix /usr/lib/wine/wineserver -k 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
bin=$work/bin
mkdir -p "$bin" "$work/pgbin" "$work/shim"
cp "target/$target/debug/xtask.exe" "$bin/"
x86_64-w64-mingw32-gcc -shared -O2 -Wall -o "$bin/bcryptprimitives.dll" .ci/bcryptprimitives.c -ladvapi32
# A pg_dump.exe that only reports an old release: xtask.exe must find it on PATH, run it and read it.
printf '#include <stdio.h>\nint main(void) { puts("pg_dump (PostgreSQL) 9.6.24"); return 0; }\n' >"$work/pg_dump.c"
x86_64-w64-mingw32-gcc -O2 -o "$work/pgbin/pg_dump.exe" "$work/pg_dump.c"
# `cargo xtask ARGS` in Wine's cmd runs xtask.exe with ARGS.
printf '@"%%XTASK_EXE%%" %%2 %%3 %%4 %%5 %%6 %%7 %%8 %%9\r\n' >"$work/shim/cargo.cmd"
linux=$root/target/debug/xtask

# No .NET or Gecko in the prefix: it is made in 4 s instead of 7.
export WINEPREFIX=$work/prefix WINEDEBUG=-all WINEDLLOVERRIDES='mscoree=;mshtml='
# Wine's Z: is /: a Unix path as Windows sees it, with backslashes (winpath) or forward slashes.
winpath() { local p="Z:$1"; echo "${p//\//\\}"; }
wine=/usr/lib/wine/wine64
mkdir "$WINEPREFIX"
/usr/lib/wine/wineserver -p # stays up between the runs below; killed at exit
# The first start creates the prefix, and says so on stderr.
$wine "$bin/xtask.exe" --help >/dev/null 2>"$work/err" </dev/null ||
  fail "xtask.exe does not start under Wine: $(cat "$work/err")"
part "start Wine"

# win CODE ARGS...: runs xtask.exe ARGS (stdout to $work/out, stderr to $work/err), no terminal;
# fails unless it exits with CODE.
win() {
  local expected=$1 code=0
  shift
  $wine "$bin/xtask.exe" "$@" >"$work/out" 2>"$work/err" </dev/null || code=$?
  [ "$code" = "$expected" ] || fail "xtask.exe $* exited $code, not $expected: $(cat "$work/err")"
}
# The bytes of an export's tables (everything from `"tables"` on), hashed; a few hundred lines here.
tables() {
  local part
  part=$(sed -n '/^ "tables": {$/,$p' "$1")
  [ "$(echo "$part" | wc -l)" -gt 100 ] || fail "$1 has no tables"
  echo "$part" | sha256sum | cut -c1-16
}
# newest DIR PATTERN: the one file in DIR whose name matches the extended regex PATTERN.
one_named() {
  local found
  found=$(ls "$1" | grep -E "^$2\$") || fail "no file named like $2 in $1: $(ls "$1")"
  [ "$(echo "$found" | wc -l)" = 1 ] || fail "more than one file named like $2 in $1: $found"
  echo "$1/$found"
}
stamp='[0-9]{8}_[0-9]{6}'

# --- SQLite -----------------------------------------------------------------------------------
backups=$work/backups
export TOEFL_BACKUPS_DIR
TOEFL_BACKUPS_DIR=$(winpath "$backups")
db=$work/win.db
forward=$(winpath "$db")
forward=${forward//\\//}
slashes_url="sqlite:///$forward"   # sqlite:///Z:/tmp/.../win.db
backslash_url="sqlite:$(winpath "$db")" # sqlite:Z:\tmp\...\win.db
"$linux" seed --students 300 --seed 13 --database-url "sqlite://$work/linux.db" 2>/dev/null
"$linux" export --file "$work/linux.json" --database-url "sqlite://$work/linux.db" 2>/dev/null
expected=$(tables "$work/linux.json")

win 0 migrate --database-url "$slashes_url"
win 0 seed --students 300 --seed 13 --database-url "$backslash_url"
export DATABASE_URL=$slashes_url
win 0 export --json
export_file=$(one_named "$backups" "toefl_export_$stamp\.json")
[ "$(tables "$export_file")" = "$expected" ] || fail "the Windows export's tables differ from Linux's"
win 0 export --compress
compressed=$(one_named "$backups" "toefl_export_$stamp(-2)?\.json\.zst")
win 3 import --file "$(winpath "$compressed")"
grep -q -- "pass --yes" "$work/err" || fail "the refusal does not say --yes: $(cat "$work/err")"
win 0 import --file "$(winpath "$compressed")" --yes
one_named "$backups" "toefl_pre_import_$stamp\.json" >/dev/null
win 0 export --file "$(winpath "$work/imported.json")"
[ "$(tables "$work/imported.json")" = "$expected" ] || fail "the import of the compressed export changed the data"
win 0 backup
backup_file=$(one_named "$backups" "toefl_backup_$stamp\.db")
win 0 seed --students 40 --seed 99 --force
# Over the file written after the import: --force replaces a file on Windows too.
win 0 export --file "$(winpath "$work/imported.json")" --force
[ "$(tables "$work/imported.json")" != "$expected" ] || fail "export --force did not replace the file"
win 0 restore --file "$(winpath "$backup_file")" --yes
one_named "$backups" "toefl_pre_restore_$stamp\.db" >/dev/null
win 0 export --file "$(winpath "$work/imported.json")" --force
[ "$(tables "$work/imported.json")" = "$expected" ] || fail "the restore did not bring back the backup's data"
win 0 verify "$(winpath "$backup_file")"
win 0 verify "$(winpath "$compressed")"
# Linux reads what Windows wrote, and lists the same backups the same way.
"$linux" verify "$backup_file" 2>/dev/null
"$linux" verify "$compressed" 2>/dev/null
win 0 list --json
listing='del(.seconds, .path, .backups[].path)'
[ "$(jq -S "$listing" "$work/out")" = "$(TOEFL_BACKUPS_DIR=$backups "$linux" list --json 2>/dev/null | jq -S "$listing")" ] ||
  fail "list differs between the Windows and the Linux build"
[ "$(jq '.backups | length' "$work/out")" = 5 ] || fail "list does not show the five files: $(cat "$work/out")"
before=$(ls "$backups")
win 0 prune --keep-last 1 --dry-run
grep -q "would delete" "$work/err" || fail "prune --dry-run names nothing to delete: $(cat "$work/err")"
[ "$(ls "$backups")" = "$before" ] || fail "prune --dry-run deleted files"
# The owner-only ACL, as Wine shows it in Unix terms: the owner's rights (given to the group too, by
# Wine) and nothing for others. A file Wine creates without an ACL, like the database, is o+r.
[ -z "$(find "$backups" -type f -perm /o=rwx)" ] || fail "backups readable by others: $(ls -l "$backups")"
[ -n "$(find "$db" -perm /o=r)" ] || fail "the ACL check cannot tell: Wine's default mode changed"
unset DATABASE_URL
part "SQLite under Wine"

# --- PostgreSQL over TCP ----------------------------------------------------------------------
bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
pg=$work/pg
mkdir "$pg"
as_postgres=()
if [ "$(id -u)" = 0 ]; then
  chown postgres:postgres "$pg"
  as_postgres=(runuser -u postgres --)
fi
password="w1n-$RANDOM$RANDOM"
echo "$password" >"$pg/pwfile"
chmod 600 "$pg/pwfile"
[ ${#as_postgres[@]} = 0 ] || chown postgres:postgres "$pg/pwfile"
"${as_postgres[@]}" "$bindir/initdb" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
  --pwfile="$pg/pwfile" --no-sync -E UTF8 --locale C -D "$pg/data" >/dev/null
port=55440
while (: </dev/tcp/127.0.0.1/$port) 2>/dev/null; do port=$((port + 1)); done
"${as_postgres[@]}" "$bindir/pg_ctl" -w -s -D "$pg/data" -l "$pg/server.log" \
  -o "-k $pg -p $port -c listen_addresses=127.0.0.1 -c fsync=off" start
pg_stop="${as_postgres[*]} $bindir/pg_ctl -D $pg/data -m immediate stop -s"
psql -q -h "$pg" -p "$port" -U postgres -d postgres -c "CREATE DATABASE toefl"
export DATABASE_URL="postgres://postgres:$password@127.0.0.1:$port/toefl"
win 0 import --file "$(winpath "$work/linux.json")" --yes
win 0 export --file "$(winpath "$work/postgres.json")"
[ "$(tables "$work/postgres.json")" = "$expected" ] || fail "the PostgreSQL round trip changed the data"
win 0 verify "$(winpath "$work/postgres.json")"
win 1 backup --file "$(winpath "$work/b.dump")"
grep -q "pg_dump.exe not found on PATH: .*winget install" "$work/err" || fail "missing pg_dump: $(cat "$work/err")"
WINEPATH=$(winpath "$work/pgbin") win 1 backup --file "$(winpath "$work/b.dump")"
grep -q "pg_dump 9.6 is older than the server" "$work/err" || fail "pg_dump.exe on PATH: $(cat "$work/err")"
! grep -q -- "$password" "$work/out" "$work/err" || fail "the password was shown"
unset DATABASE_URL
part "PostgreSQL under Wine"

# --- The README's Windows commands, in Wine's cmd -----------------------------------------------
# Each `cargo xtask` line of the ```bat blocks, and the command of each `schtasks /create` (without
# its `cd /d` to the checkout), runs in a directory with backups\; a file name like
# toefl_backup_20260131_020000.db stands for the newest of its kind there. The ```powershell block
# must have the same `cargo xtask` lines.
readme_dir=$work/readme
mkdir -p "$readme_dir/backups"
blocks() { awk -v tag="$1" '$0 == "```" tag {inside = 1; next} /^```/ {inside = 0} inside' README.md; }
bat=$(blocks bat | tr -d '\r')
[ "$(blocks powershell | grep '^cargo xtask')" = "$(echo "$bat" | grep '^cargo xtask')" ] ||
  fail "the README's PowerShell and cmd blocks run different cargo xtask commands"
commands=$(echo "$bat" | grep '^cargo xtask')
commands+=$'\n'$(echo "$bat" | sed -n 's/^schtasks \/create .*\/tr "cmd \/c cd \/d [^&]* && \(.*\)"$/\1/p')
[ "$(echo "$commands" | grep -c xtask)" -ge 6 ] || fail "the README's Windows commands were not found"
cp "$work/linux.db" "$readme_dir/dev.db"
ran=0
while read -r command; do
  for kind in toefl_backup_.db toefl_export_.json; do
    prefix=${kind%.*} extension=${kind##*.}
    newest=$(ls "$readme_dir/backups" | grep -E "^$prefix$stamp\.$extension\$" | sort | tail -n 1 || true)
    [ -z "$newest" ] || command=$(echo "$command" | sed -E "s/$prefix[0-9_]+\.$extension/$newest/")
  done
  code=0
  (cd "$readme_dir" && TOEFL_BACKUPS_DIR='backups' DATABASE_URL="sqlite:dev.db" XTASK_EXE="$(winpath "$bin/xtask.exe")" \
    WINEPATH="$(winpath "$work/shim")" $wine cmd /c "$command" >"$work/out" 2>"$work/err" </dev/null) || code=$?
  [ "$code" = 0 ] || fail "README: $command exited $code: $(cat "$work/err")"
  ran=$((ran + 1))
done <<<"$commands"
grep -q '"ok":true' "$readme_dir/backups/exports.log" || fail "the scheduled export's log: $(cat "$readme_dir/backups/exports.log")"
part "README's Windows commands"

now=$(clock)
echo "windows-smoke: passed ($ran README commands) in $(((now - started) / 1000)) s"
