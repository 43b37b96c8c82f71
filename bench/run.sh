#!/usr/bin/env bash
# bench/run.sh (make bench): Latchkey's benchmark suite end to end
# (docs/performance.md).
#
#  1. builds latchkey and the load driver (bench/load);
#  2. for SQLite, and for PostgreSQL (+ Redis) when LATCHKEY_TEST_POSTGRES
#     (and LATCHKEY_TEST_REDIS) are set: writes a throwaway config, creates
#     the users and clients with the CLI (the benchmark clients register
#     id_token_signed_response_alg ES256), starts `latchkey serve` on
#     127.0.0.1 pinned to CPU 1 and runs the load driver pinned to CPU 0,
#     then stops the server by its PID;
#  3. runs the Go benchmarks (./bench/ and web/bench_test.go);
#  4. prints the report, also written to $BENCH_OUT/report.md.
#
# Every phase is bounded (BENCH_DURATION per load phase, -benchtime per Go
# benchmark, timeouts on the Go test run); the whole run takes about 8
# minutes on 2 cores. Knobs (environment):
#   BENCH_OUT          output directory (default: a new /tmp/latchkey-bench.*)
#   BENCH_DURATION     load phase length (default 5s)
#   BENCH_CONCURRENCY  load connections (default 8)
#   BENCH_BENCHTIME    go test -benchtime (default 1s)
#   BENCH_SKIP_LOAD=1, BENCH_SKIP_GO=1, BENCH_SKIP_POSTGRES=1
#   BENCH_SCENARIOS    comma-separated load scenarios (default all)
#   BENCH_LATCHKEY     a latchkey binary to measure instead of building one
#                      (A/B runs against another commit's build)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
GO=${GO:-go}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/latchkey-bench.XXXXXX)}
mkdir -p "$OUT/bin"
DURATION=${BENCH_DURATION:-5s}
CONC=${BENCH_CONCURRENCY:-8}
BENCHTIME=${BENCH_BENCHTIME:-1s}
REPORT=$OUT/report.md
SERVER_PID=""
PG_DSN=""
REDIS_PREFIX=""

log() { printf '== %s\n' "$*" >&2; }

stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$SERVER_PID" 2>/dev/null && kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
cleanup() {
  stop_server
  if [ -n "$PG_DSN" ]; then "$OUT/bin/load" pgdb drop "$PG_DSN" || true; fi
  if [ -n "$REDIS_PREFIX" ]; then "$OUT/bin/load" redisclean "$LATCHKEY_TEST_REDIS" "$REDIS_PREFIX" || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Pinning: server on CPU 1, load on CPU 0, when there are two CPUs and
# taskset (util-linux) is there.
PIN_SERVER=() PIN_LOAD=()
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
  PIN_SERVER=(taskset -c 1) PIN_LOAD=(taskset -c 0)
  PINNING="server on CPU 1, load generator on CPU 0 (taskset)"
else
  PINNING="not pinned (taskset missing or one CPU): server and load share the machine"
fi

log "build (output in $OUT)"
if [ -n "${BENCH_LATCHKEY:-}" ]; then
  cp "$BENCH_LATCHKEY" "$OUT/bin/latchkey"
else
  $GO build -o "$OUT/bin/latchkey" ./cmd/latchkey || { log "go build ./cmd/latchkey failed"; exit 1; }
fi
$GO build -o "$OUT/bin/load" ./bench/load || { log "go build ./bench/load failed"; exit 1; }
LK=$OUT/bin/latchkey

{
  echo "# Latchkey benchmark run $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "Machine: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ //'), nproc $(nproc), $(free -m 2>/dev/null | awk '/^Mem:/{print $2" MiB RAM"}');" \
    "$($GO version | cut -d' ' -f3-); commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' + local changes')${BENCH_LATCHKEY:+; server binary $BENCH_LATCHKEY}."
  echo "Pinning: $PINNING. Load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)."
} >"$REPORT"

# setup DIR STORAGE_YAML EPHEMERAL_YAML DIALECT DSN: config, schema,
# users, clients.
setup() {
  local dir=$1 storage=$2 ephemeral=$3 dialect=$4 dsn=$5 port up_port up_secret
  rm -rf "$dir" && mkdir -p "$dir"
  port=$("$OUT/bin/load" freeport)
  BASE=http://127.0.0.1:$port
  # The federated login's upstream OP runs inside the load driver (on the
  # load core) on up_port; discovery is read at the first login through it.
  up_port=$("$OUT/bin/load" freeport)
  up_secret=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
  cat >"$dir/latchkey.yaml" <<EOF
# Throwaway config of bench/run.sh.
issuer: $BASE
http:
  address: 127.0.0.1:$port
$storage
$ephemeral
keys:
  encryptionKeys:
    - id: bench
      key: $(head -c 32 /dev/urandom | base64)
logging:
  level: info
  format: json
# The limiter stays on (its counters are part of every token request and
# login), with limits no benchmark reaches: every login comes from
# 127.0.0.1 and every client_credentials grant from one client.
limits:
  loginPerIP: {limit: 1000000000, window: 1m}
  loginPerAccount: {limit: 1000000000, window: 1m}
  tokenPerClient: {limit: 1000000000, window: 1m}
# The upstream OpenID provider of the login_federated scenario, served by
# the load driver on loopback.
outbound:
  allowedNetworks: [127.0.0.0/8]
connectors:
  - id: upstream
    type: oidc
    name: Bench upstream
    config:
      issuer: http://127.0.0.1:$up_port
      clientID: latchkey-bench
      clientSecret: $up_secret
EOF
  local cfg=(--config "$dir/latchkey.yaml")
  # cli runs a latchkey command; its stderr goes to cli.log, shown on failure.
  cli() {
    "$LK" "$@" "${cfg[@]}" 2>>"$dir/cli.log" || { log "latchkey $1 $2 failed:"; tail -5 "$dir/cli.log" >&2; return 1; }
  }
  cli migrate up >/dev/null
  echo '{"grant_types":["client_credentials"],"scope":"api:read","id_token_signed_response_alg":"ES256"}' >"$dir/cc.json"
  echo '{"grant_types":["authorization_code","refresh_token"],"id_token_signed_response_alg":"ES256"}' >"$dir/app.json"
  local cc_secret app_secret fed_secret password users=() fast=() names=()
  cc_secret=$(cli clients create --id bench-cc --metadata "$dir/cc.json")
  app_secret=$(cli clients create --id bench-app --redirect-uri http://127.0.0.1:9/cb --metadata "$dir/app.json")
  # The federated login's app signs its users in only through the upstream,
  # so /authorize sends the browser there at once (no chooser page).
  echo '{"grant_types":["authorization_code","refresh_token"],"id_token_signed_response_alg":"ES256","allowed_connectors":["upstream"]}' >"$dir/fed.json"
  fed_secret=$(cli clients create --id bench-fed --redirect-uri http://127.0.0.1:9/cb --metadata "$dir/fed.json")
  password=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
  # Logins are spread over several users, as on a real server (each
  # user's sessions are indexed together).
  # The fast-* users get tiny argon2id parameters afterwards (login
  # without the hash, scenario login_fasthash).
  for i in $(seq 0 63); do
    for who in bench fast; do
      printf '%s\n' "$password" | cli users create --username "$who-$i" --email "$who-$i@example.com" \
        --email-verified --password-stdin >/dev/null
    done
    users+=("\"bench-$i\"") fast+=("\"fast-$i\"") names+=("fast-$i")
  done
  "$OUT/bin/load" cheaphash "$dialect" "$dsn" "$password" "${names[@]}"
  local IFS=,
  cat >"$dir/creds.json" <<EOF
{"cc_client":"bench-cc","cc_secret":"$cc_secret","cc_scope":"api:read",
 "app_client":"bench-app","app_secret":"$app_secret","redirect_uri":"http://127.0.0.1:9/cb",
 "users":[${users[*]}],"fast_users":[${fast[*]}],"password":"$password",
 "upstream":{"addr":"127.0.0.1:$up_port","connector":"upstream","client_id":"latchkey-bench","client_secret":"$up_secret",
   "app_client":"bench-fed","app_secret":"$fed_secret"}}
EOF
  chmod 600 "$dir/creds.json"
}

# load_run LABEL DIR [SCENARIOS]
load_run() {
  local label=$1 dir=$2 scen=${3:-}
  log "load: $label: start latchkey serve"
  "${PIN_SERVER[@]}" "$LK" serve --config "$dir/latchkey.yaml" >"$dir/serve.log" 2>&1 &
  SERVER_PID=$!
  "$OUT/bin/load" wait "$BASE"
  sleep 2 # idle RSS after start-up settles
  "${PIN_LOAD[@]}" "$OUT/bin/load" -base "$BASE" -pid "$SERVER_PID" -creds "$dir/creds.json" -c "$CONC" \
    -duration "$DURATION" -label "$label" -json "$dir/load.json" ${scen:+-scenarios "$scen"} | tee -a "$REPORT"
  stop_server
}

if [ "${BENCH_SKIP_LOAD:-}" != 1 ]; then
  setup "$OUT/sqlite" "storage: {sqlite: {path: latchkey.db}}" "" sqlite "$OUT/sqlite/latchkey.db"
  load_run "latchkey serve on SQLite (sessions, codes in SQLite too)" "$OUT/sqlite" "${BENCH_SCENARIOS:-}"

  if [ -n "${LATCHKEY_TEST_POSTGRES:-}" ] && [ "${BENCH_SKIP_POSTGRES:-}" != 1 ]; then
    PG_DSN=$("$OUT/bin/load" pgdb create "$LATCHKEY_TEST_POSTGRES")
    eph="" what="PostgreSQL"
    if [ -n "${LATCHKEY_TEST_REDIS:-}" ]; then
      addrs=$(echo "$LATCHKEY_TEST_REDIS" | sed 's/[^,][^,]*/"&"/g')
      REDIS_PREFIX="lkbench:$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n'):"
      eph="ephemeral: {redis: {addrs: [$addrs]}, keyPrefix: \"$REDIS_PREFIX\"}"
      what="PostgreSQL + Redis"
    fi
    setup "$OUT/postgres" "storage: {postgres: {dsn: \"$PG_DSN\"}}" "$eph" postgres "$PG_DSN"
    load_run "latchkey serve on $what" "$OUT/postgres" "${BENCH_SCENARIOS:-client_credentials,introspection,refresh,login_fasthash,login_federated}"
    "$OUT/bin/load" pgdb drop "$PG_DSN" && PG_DSN=""
    if [ -n "$REDIS_PREFIX" ]; then "$OUT/bin/load" redisclean "$LATCHKEY_TEST_REDIS" "$REDIS_PREFIX" && REDIS_PREFIX=""; fi
  else
    echo -e "\n(PostgreSQL load run skipped: LATCHKEY_TEST_POSTGRES is not set.)" | tee -a "$REPORT"
  fi
fi

if [ "${BENCH_SKIP_GO:-}" != 1 ]; then
  log "go test -bench (benchtime $BENCHTIME)"
  {
    echo
    echo "## Go benchmarks (go test -run '^\$' -bench . -benchmem -benchtime $BENCHTIME ./bench/ ./web/)"
    echo
    echo "Load average at the start: $(cut -d' ' -f1-3 /proc/loadavg). cpu-ns/op is the CPU this process spent per op (all goroutines)."
    echo
    echo '```'
  } >>"$REPORT"
  set +e
  $GO test -run '^$' -bench . -benchmem -benchtime "$BENCHTIME" -timeout 8m ./bench/ ./web/ 2>&1 |
    grep -E '^(Benchmark|ok|FAIL|PASS|---|goos|goarch|cpu|pkg)|skipping' | tee -a "$REPORT"
  status=${PIPESTATUS[0]}
  set -e
  echo '```' >>"$REPORT"
  echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)." >>"$REPORT"
  [ "$status" = 0 ] || { log "go test -bench failed"; exit "$status"; }
fi

log "report: $REPORT"
