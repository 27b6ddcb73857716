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

swift build -c release --product wasla >/dev/null
swift build -c release --product LoadGen >/dev/null
swift build -c release --product ParserBench >/dev/null
swift build -c release --product StoreBench >/dev/null
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

echo "== webhook ingest: unique signed bodies, $CONNECTIONS keep-alive connections, ${DURATION}s, fresh data directory"
INGEST_PORT=$((WASLA_PORT + 10))
rm -rf "$work/ingest" && mkdir -p "$work/ingest"
DATA_DIR="$work/ingest" HOST=127.0.0.1 PORT="$INGEST_PORT" LOG_LEVEL=error WHATSAPP_APP_SECRET=bench-secret \
  WEBHOOK_RATE_LIMIT_MAX=10000000 "$bin/wasla" serve 2>"$work/ingest.log" &
pids+=($!)
wait_port "$INGEST_PORT"
line=$("$bin/LoadGen" --port "$INGEST_PORT" --path /api/webhook --connections "$CONNECTIONS" --duration "$DURATION" \
  --webhook-secret bench-secret --label "wasla ingest (200 only after a durable commit)")
echo "$line"
acked=$(echo "$line" | sed -E 's/.* 2xx ([0-9]+).*/\1/')
kill "${pids[-1]}" 2>/dev/null || true
wait "${pids[-1]}" 2>/dev/null || true
stored=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from webhook_events').fetchone()[0])" "$work/ingest/wasla.sqlite")
echo "acknowledged with 200: $acked, stored: $stored"
if [ "$acked" = "$stored" ]; then echo "check: every acknowledged event is stored, and nothing else"; else echo "CHECK FAILED: stored != acknowledged"; exit 1; fi
echo "targets: at least 25,000 webhooks/s acknowledged after a durable commit, p99 at most 10 ms"

echo "== memory and start-up"
BENCH_DURATION="$DURATION" python3 Benchmarks/memory.py
