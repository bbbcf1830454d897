#!/usr/bin/env bash
# Profile one all-in-one import, the way docs/performance.md was measured.
#
#   deploy/profile/import.sh ROWS [pg|sqlite]        (from the repository root)
#
# Builds services/inlet, starts a throwaway PostgreSQL (pg, the default) or uses the embedded
# SQLite, serves pprof on 127.0.0.1:6060, imports ../shared/bench's contacts file (generated on
# first use) fresh and again, and prints each import's time and phase spans. While it runs:
#   go tool pprof -top $WORK/inlet http://127.0.0.1:6060/debug/pprof/profile?seconds=20
# Environment: BATCH (INLET_BATCH_SIZE), AGAIN=0 (skip the re-import), NEXT=FILE (then import
# FILE, new rows into the organization the first import filled), WORK (a scratch dir), and any
# INLET_* variable.
set -eu
rows=${1:?rows}; mode=${2:-pg}
repo=$(pwd); bench=$repo/../shared/bench
work=${WORK:-/tmp/inlet-profile}; mkdir -p "$work"; chmod 777 "$work"
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
[ -f "/tmp/contacts_$rows.csv" ] || python3 "$bench/gen_contacts.py" "$rows" "/tmp/contacts_$rows.csv"
(cd "$repo/services" && go build -o "$work/inlet" ./inlet)
{ echo "code,name"; for i in $(seq 1 30); do printf 'C%03d,Company %d\n' "$i" "$i"; done; } > "$work/companies.csv"
store=""
if [ "$mode" = pg ]; then
  pgbin=$(dirname "$(command -v initdb 2>/dev/null || ls /usr/lib/postgresql/*/bin/initdb | tail -1)")
  id postgres >/dev/null 2>&1 || useradd -r postgres
  rm -rf "$work/pg"; mkdir -p "$work/pg"; chown postgres "$work/pg"
  pgp=$(free_port)
  su postgres -s /bin/sh -c "$pgbin/initdb -D $work/pg -U postgres --auth=trust >/dev/null && $pgbin/pg_ctl -D $work/pg -l $work/pg.log -o '-p $pgp -k $work -c listen_addresses=127.0.0.1' -w start >/dev/null"
  trap 'su postgres -s /bin/sh -c "$pgbin/pg_ctl -D $work/pg -m fast stop" >/dev/null 2>&1' EXIT
  store="postgres://postgres@127.0.0.1:$pgp/postgres?sslmode=disable"
fi
http=$(free_port)
rm -rf "$work/data"
INLET_PPROF_ADDR=${INLET_PPROF_ADDR:-127.0.0.1:6060} INLET_HTTP_ADDR=127.0.0.1:$http INLET_NATS_LISTEN=127.0.0.1:$(free_port) \
  INLET_DATA_DIR=$work/data INLET_RESOURCES_DIR=$bench/resources INLET_STORE_URL=$store INLET_BATCH_SIZE=${BATCH:-10000} \
  INLET_LOG_LEVEL=${INLET_LOG_LEVEL:-warn} INLET_LOG_FORMAT=json "$work/inlet" > "$work/inlet.log" 2>&1 &
ipid=$!
trap 'kill $ipid 2>/dev/null; [ -n "${pgbin:-}" ] && su postgres -s /bin/sh -c "$pgbin/pg_ctl -D $work/pg -m fast stop" >/dev/null 2>&1' EXIT
for _ in $(seq 1 240); do curl -fs "http://127.0.0.1:$http/readyz" >/dev/null 2>&1 && break; sleep 0.25; done
import() {  # $1 resource, $2 file: waits for a terminal status, prints time and phase spans
  local id
  id=$(curl -s -F "resource=$1" -F organization_id=acme -F skip_errors=true -F "file=@$2" "http://127.0.0.1:$http/v1/imports" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  # Polled the way side-by-side.sh does (curl and grep every 0.5 s): a
  # python3 started every 0.2 s took about a tenth of a core from the import.
  until curl -s -H 'X-Organization-Id: acme' "http://127.0.0.1:$http/v1/imports/$id" > "$work/import.json" &&
    grep -o '"status": *"[a-z_]*"' "$work/import.json" | head -1 | grep -qE '"(completed|failed|interrupted|timed_out|expired)"'; do
    sleep 0.5
  done
  python3 - "$work/import.json" <<'PY'
import json, sys, datetime
d = json.load(open(sys.argv[1]))
if d["status"] not in ("completed", "failed", "interrupted", "timed_out", "expired"):
    sys.exit(1)
t = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
t0 = t(d["created_at"])
print(d["resource"], d["status"], "%.2f s" % (t(d["completed_at"]) - t0).total_seconds(), json.dumps(d["stats"]))
for p in d["phases"]:
    if p["started_at"] and p["completed_at"]:
        print("  %-14s %8.2f %8.2f" % (p["name"], (t(p["started_at"]) - t0).total_seconds(), (t(p["completed_at"]) - t0).total_seconds()))
PY
}
import companies "$work/companies.csv" >/dev/null
import contacts "/tmp/contacts_$rows.csv"
[ "${AGAIN:-1}" = 1 ] && import contacts "/tmp/contacts_$rows.csv"
[ -n "${NEXT:-}" ] && import contacts "$NEXT"
echo "peak RSS $(( $(awk '/VmHWM/{print $2}' /proc/$ipid/status) / 1024 )) MiB"
