#!/usr/bin/env bash
# make bench: builds the release binaries, then prints every figure the README quotes.
# Servers are started on 127.0.0.1 only and stopped by PID at the end, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${BENCH_DURATION:-10}"
CONNECTIONS="${BENCH_CONNECTIONS:-64}"
WASLA_PORT="${BENCH_WASLA_PORT:-18481}"
NGINX_PORT="${BENCH_NGINX_PORT:-18482}"
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The flags of `make build` (static Swift runtime, linked by lld), from the Makefile: the same for every product,
# so one build serves all.
read -r -a release <<< "${SWIFT_RELEASE_FLAGS:?run through make bench, which sets the release build flags}"
for product in wasla LoadGen ParserBench StoreBench ProcessBench SignatureBench; do
  swift build "${release[@]}" --product "$product" >/dev/null
done
bin=.build/release

echo "== machine: $(nproc) cores, $(uname -r)"
echo "== HTTP parser (single thread)"
"$bin/ParserBench" 200000

wait_port() {  # port
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "server on port $1 did not start" >&2
  return 1
}

echo "== store: inserts through the group-committing writer vs the C-API ceiling"
"$bin/StoreBench" 20000

echo "== GET /healthz over loopback, $CONNECTIONS keep-alive connections, ${DURATION}s each, same load generator"
nginx_rps=""
if command -v nginx >/dev/null 2>&1; then
  mkdir -p "$work/nginx"
  cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  server { listen 127.0.0.1:$NGINX_PORT; location / { return 200 "ok"; } }
}
CONF
  nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
  pids+=($!)
  wait_port "$NGINX_PORT"
  line=$("$bin/LoadGen" --port "$NGINX_PORT" --path /healthz --connections "$CONNECTIONS" --duration "$DURATION" --label "nginx (1 worker, return 200)")
  echo "$line"
  nginx_rps=$(echo "$line" | sed -E 's/.* ([0-9.]+) req\/s.*/\1/')
  kill "${pids[-1]}" 2>/dev/null || true
else
  echo "nginx not installed (apt-get install -y nginx-light): comparison skipped"
fi

mkdir -p "$work/data"
DATA_DIR="$work/data" HOST=127.0.0.1 PORT="$WASLA_PORT" LOG_LEVEL=error "$bin/wasla" serve 2>"$work/wasla.log" &
pids+=($!)
wait_port "$WASLA_PORT"
line=$("$bin/LoadGen" --port "$WASLA_PORT" --path /healthz --connections "$CONNECTIONS" --duration "$DURATION" --label "wasla")
echo "$line"
wasla_rps=$(echo "$line" | sed -E 's/.* ([0-9.]+) req\/s.*/\1/')
if [ -n "$nginx_rps" ]; then
  awk -v w="$wasla_rps" -v n="$nginx_rps" 'BEGIN { printf "wasla / nginx = %.0f%% (target: at least 60%%)\n", 100 * w / n }'
fi
kill "${pids[-1]}" 2>/dev/null || true
wait "${pids[-1]}" 2>/dev/null || true

echo "== signature verification"
"$bin/SignatureBench" 200000

# ingest_run NAME LABEL [VAR=VALUE...]: a fresh data directory, LoadGen's unique signed bodies, then the check that
# the stored events equal the 200s.
ingest_run() {
  local name="$1" label="$2"; shift 2
  local port=$((WASLA_PORT + 10 + ${#pids[@]}))
  rm -rf "$work/$name" && mkdir -p "$work/$name"
  env "$@" DATA_DIR="$work/$name" HOST=127.0.0.1 PORT="$port" LOG_LEVEL=error WHATSAPP_APP_SECRET=bench-secret \
    WEBHOOK_RATE_LIMIT_MAX=10000000 "$bin/wasla" serve 2>"$work/$name.log" &
  pids+=($!)
  wait_port "$port"
  line=$("$bin/LoadGen" --port "$port" --path /api/webhook --connections "$CONNECTIONS" --duration "$DURATION" \
    --webhook-secret bench-secret --label "$label")
  echo "$line"
  acked=$(echo "$line" | sed -E 's/.* 2xx ([0-9]+).*/\1/')
  kill "${pids[-1]}" 2>/dev/null || true
  wait "${pids[-1]}" 2>/dev/null || true
  stored=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from webhook_events').fetchone()[0])" "$work/$name/wasla.sqlite")
  echo "acknowledged with 200: $acked, stored: $stored"
  if [ "$acked" = "$stored" ]; then echo "check: every acknowledged event is stored, and nothing else"; else echo "CHECK FAILED: stored != acknowledged"; exit 1; fi
}

echo "== webhook ingest: unique signed bodies, $CONNECTIONS keep-alive connections, ${DURATION}s, fresh data directory"
ingest_run ingest "wasla ingest (200 only after a durable commit)"
echo "targets: at least 25,000 webhooks/s acknowledged after a durable commit, p99 at most 10 ms"

echo "== the same with the Supabase sync on and Supabase down (every change also queued in sync_outbox)"
ingest_run ingest-sync "wasla ingest, Supabase unreachable" SUPABASE_URL=http://127.0.0.1:9 SUPABASE_SERVICE_ROLE_KEY=bench
# An event is queued for Supabase when the processor marks it: every event no longer pending must be queued.
read -r queued marked pending <<< "$(python3 -c "
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
one = lambda q: db.execute(q).fetchone()[0]
print(one(\"select count(*) from sync_outbox where table_name = 'webhook_events'\"),
      one(\"select count(*) from webhook_events where processing_status != 'pending'\"),
      one(\"select count(*) from webhook_events where processing_status = 'pending'\"))" "$work/ingest-sync/wasla.sqlite")"
echo "webhook events processed: $marked, waiting in the sync outbox: $queued; still pending processing: $pending"
if [ "$queued" = "$marked" ]; then echo "check: every processed event is queued for Supabase"; else echo "CHECK FAILED: queued != processed"; exit 1; fi

echo "== processing: the background processor alone, stored events into messages, contacts, conversations, jobs"
"$bin/ProcessBench" "${BENCH_PROCESS_EVENTS:-50000}"

echo "== processing with the Supabase sync on: the same, with every change also queued in sync_outbox by the triggers"
BENCH_SYNC=1 "$bin/ProcessBench" "${BENCH_PROCESS_EVENTS:-50000}" plain

echo "== webhook acknowledgements while the processor catches up after a burst"
python3 Benchmarks/catchup.py

echo "== memory and start-up"
BENCH_DURATION="$DURATION" python3 Benchmarks/memory.py
python3 Benchmarks/startup.py
