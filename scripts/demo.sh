#!/usr/bin/env bash
# The main job, end to end, on real services:
#   1. Kafka and PostgreSQL: `npm run infra:up` (or KAFKA_BROKERS / DATABASE_URL when both are set);
#   2. `winchester check` of etc/, then a database of its own for this run, migrated with `winchester db upgrade -c etc/winchester.yaml`;
#   3. a trigger worker and a pipeline worker in the background, running the StackTach usage job of etc/
#      (test_trigger → logger, usage, notabene publishing the verdicts to the Kafka topic monitor.info),
#      on topics of their own, with the event-time clock; logs in .demo/runs/<run>/;
#   4. a notigen workload (`winchester generate`) sent with `winchester produce`, then
#      `winchester produce --advance-clock` past the last event so every stream fires or expires;
#   5. progress from the workers' /metrics, then a summary: notifications in, streams fired and expired,
#      verdicts (verified, failed by code U0–U8, warnings) counted on the verdict topic.
# The workers keep running afterwards so their /metrics can be scraped; `npm run demo -- --stop` stops
# them and removes the run's database and topics (the next `npm run demo` does that first, too).
#
# Usage: npm run demo [-- --instances N --days N --seed N --ops-per-day X --stop-after | --stop]
# Environment: DEMO_INSTANCES, DEMO_DAYS, DEMO_SEED, DEMO_OPS_PER_DAY, DEMO_PARTITIONS (4),
#   DEMO_TRIGGER_METRICS_PORT (9464), DEMO_PIPELINE_METRICS_PORT (9465), DEMO_TIMEOUT (seconds, 300),
#   DEMO_KEEP_RUNNING (1; 0 = --stop-after), DEMO_DIR (.demo: logs and the running run's state),
#   KAFKA_BROKERS + DATABASE_URL (use those services instead of starting local ones).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

DEMO_DIR=${DEMO_DIR:-$ROOT/.demo}
CURRENT="$DEMO_DIR/current"
instances=${DEMO_INSTANCES:-200}
days=${DEMO_DAYS:-3}
seed=${DEMO_SEED:-42}
ops=${DEMO_OPS_PER_DAY:-2}
partitions=${DEMO_PARTITIONS:-4}
trigger_port=${DEMO_TRIGGER_METRICS_PORT:-9464}
pipeline_port=${DEMO_PIPELINE_METRICS_PORT:-9465}
timeout=${DEMO_TIMEOUT:-300}
keep=${DEMO_KEEP_RUNNING:-1}
action=run

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
}
while [[ $# -gt 0 ]]; do
  case "$1" in
  --instances | --days | --seed | --ops-per-day)
    [[ $# -ge 2 ]] || {
      echo "demo: $1 needs a value" >&2
      exit 2
    }
    case "$1" in
    --instances) instances=$2 ;;
    --days) days=$2 ;;
    --seed) seed=$2 ;;
    --ops-per-day) ops=$2 ;;
    esac
    shift 2
    ;;
  --stop-after) keep=0 && shift ;;
  --keep-running) keep=1 && shift ;;
  --stop) action=stop && shift ;;
  -h | --help) usage && exit 0 ;;
  *)
    echo "demo: unknown option $1 (--instances N, --days N, --seed N, --ops-per-day X, --stop-after, --stop, --help)" >&2
    exit 2
    ;;
  esac
done
for v in instances days seed partitions trigger_port pipeline_port timeout; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || {
    echo "demo: $v must be a whole number, not '${!v}'" >&2
    exit 2
  }
done

say() { printf '%s\n' "$*"; }
winchester() { node "$ROOT/bin/winchester.js" "$@"; }
tool() { node --import tsx "$ROOT/scripts/demo-tool.ts" "$@"; }

# A pid is one of our workers only if it still runs bin/winchester.js (pids get reused).
is_worker() {
  [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null || return 1
  if [[ -r "/proc/$1/cmdline" ]]; then
    tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | grep -q 'bin/winchester.js'
  else
    ps -p "$1" -o args= 2>/dev/null | grep -q 'bin/winchester.js'
  fi
}

# Stops the workers of the run in $1 (SIGTERM: they checkpoint and leave their groups), then removes the
# run's database and topics. Logs stay in the run's directory.
stop_run() {
  local dir=$1 pid i
  [[ -f "$dir/run.env" ]] || return 0
  (
    # shellcheck disable=SC1091
    source "$dir/run.env"
    for pid in ${DEMO_PIDS:-}; do
      is_worker "$pid" && kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in ${DEMO_PIDS:-}; do
      for ((i = 0; i < 200; i++)); do
        is_worker "$pid" || break
        sleep 0.1
      done
      if is_worker "$pid"; then
        say "demo: worker $pid still running 20 s after SIGTERM: killing it"
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done
    if [[ -n "${DEMO_DATABASE:-}" ]]; then
      tool db-drop "$DEMO_ADMIN_DATABASE_URL" "$DEMO_DATABASE" || say "demo: could not drop database $DEMO_DATABASE"
    fi
    tool delete-topics "$DEMO_KAFKA_BROKERS" $DEMO_TOPICS || say "demo: could not delete the topics $DEMO_TOPICS"
    say "demo: stopped run $DEMO_RUN_ID (workers ${DEMO_PIDS:-none}); logs kept in $dir"
  )
  rm -f "$dir/run.env"
}

stop_current() {
  if [[ -L "$CURRENT" ]]; then
    stop_run "$(readlink -f "$CURRENT")"
    rm -f "$CURRENT"
  fi
}

if [[ "$action" == stop ]]; then
  if [[ -L "$CURRENT" && -f "$CURRENT/run.env" ]]; then stop_current; else say 'demo: no demo run is running'; fi
  exit 0
fi

# ---------------------------------------------------------------------------------------------------
say '== 0. build'
if [[ ! -d node_modules ]]; then
  npm ci --no-audit --no-fund
fi
if [[ ! -f dist/main.js || -n "$(find src -newer dist/main.js -name '*.ts' -print -quit)" ]]; then
  say 'dist/ is older than src/: npm run build'
  npm run --silent build
else
  say 'dist/ is up to date'
fi

# A previous run's workers hold the metrics ports and its topics: stop it first.
if [[ -L "$CURRENT" && -f "$CURRENT/run.env" ]]; then
  say 'stopping the previous demo run'
  stop_current
fi

say
say '== 1. infrastructure: Kafka and PostgreSQL'
if [[ -n "${KAFKA_BROKERS:-}" && -n "${DATABASE_URL:-}" ]]; then
  say "using KAFKA_BROKERS=$KAFKA_BROKERS and DATABASE_URL (set in the environment)"
  node --import tsx scripts/infra-probe.ts kafka "$KAFKA_BROKERS" --timeout-ms 30000
  node --import tsx scripts/infra-probe.ts postgres "$DATABASE_URL" --timeout-ms 30000
else
  npm run --silent infra:up
  # shellcheck disable=SC1091
  source .infra/env
fi

run_id="$(date -u +%Y%m%d%H%M%S)$(printf '%04x' $((RANDOM % 65536)))"
run_dir="$DEMO_DIR/runs/$run_id"
mkdir -p "$run_dir"
# Keep the logs of the last five runs.
ls -1d "$DEMO_DIR"/runs/*/ 2>/dev/null | sort | head -n -5 | xargs -r rm -rf
ln -sfn "runs/$run_id" "$CURRENT"

admin_url=$DATABASE_URL
database="winchester_demo_$run_id"
topic_prefix="winchester-demo-$run_id"
verdict_topic=monitor.info # the queue_name of the notabene steps in etc/pipelines.yaml
cleanup_on_exit() {
  local rc=$?
  if [[ -f "$run_dir/run.env" && ("$rc" -ne 0 || "$keep" == 0) ]]; then
    if [[ "$rc" -eq 130 ]]; then
      say "demo: interrupted; stopping the workers (logs in $run_dir)"
    elif [[ "$rc" -ne 0 ]]; then
      say "demo: failed (exit $rc); stopping the workers (logs in $run_dir)"
    fi
    stop_run "$run_dir"
    rm -f "$CURRENT"
  fi
}
trap cleanup_on_exit EXIT
trap 'exit 130' INT TERM

say
say '== 2. configuration: winchester check -c etc/winchester.yaml'
winchester check -c etc/winchester.yaml
say "database $database for this run (migrated with winchester db upgrade)"
DATABASE_URL=$(tool db-create "$admin_url" "$database")
export DATABASE_URL KAFKA_BROKERS
export WINCHESTER_KAFKA_CLIENT_ID="$topic_prefix"
export WINCHESTER_KAFKA_TOPICS_NOTIFICATIONS="$topic_prefix.notifications"
export WINCHESTER_KAFKA_TOPICS_STREAM_EVENTS="$topic_prefix.stream-events"
export WINCHESTER_KAFKA_TOPICS_BATCHES="$topic_prefix.batches"
export WINCHESTER_KAFKA_TOPICS_DEAD_LETTER="$topic_prefix.dead-letter"
export WINCHESTER_KAFKA_PARTITIONS="$partitions"
export WINCHESTER_CLOCK_MODE=event
export WINCHESTER_METRICS_HOST=127.0.0.1
{
  printf "DEMO_RUN_ID='%s'\n" "$run_id"
  printf "DEMO_KAFKA_BROKERS='%s'\n" "$KAFKA_BROKERS"
  printf "DEMO_ADMIN_DATABASE_URL='%s'\n" "$admin_url"
  printf "DEMO_DATABASE='%s'\n" "$database"
  printf "DEMO_TOPICS='%s'\n" "$WINCHESTER_KAFKA_TOPICS_NOTIFICATIONS $WINCHESTER_KAFKA_TOPICS_STREAM_EVENTS $WINCHESTER_KAFKA_TOPICS_BATCHES $WINCHESTER_KAFKA_TOPICS_DEAD_LETTER"
  printf "DEMO_NOTIFICATIONS_TOPIC='%s'\n" "$WINCHESTER_KAFKA_TOPICS_NOTIFICATIONS"
  printf "DEMO_VERDICT_TOPIC='%s'\n" "$verdict_topic"
  printf "DEMO_TRIGGER_PORT='%s'\n" "$trigger_port"
  printf "DEMO_PIPELINE_PORT='%s'\n" "$pipeline_port"
} >"$run_dir/run.env"
winchester db upgrade -c etc/winchester.yaml

say
say "== 3. workers (StackTach usage job of etc/, event-time clock, $partitions partitions per topic)"
# Verdicts already on the topic belong to earlier runs: the summary counts from here on.
tool end-offsets "$KAFKA_BROKERS" "$verdict_topic" >"$run_dir/verdict-offsets.json"
for port in "$trigger_port" "$pipeline_port"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    say "demo: port $port is in use; choose others with DEMO_TRIGGER_METRICS_PORT / DEMO_PIPELINE_METRICS_PORT" >&2
    exit 1
  fi
done
# setsid: a Ctrl-C after the summary, in the terminal that ran the demo, must not stop the workers.
WINCHESTER_METRICS_PORT=$trigger_port setsid node bin/winchester.js trigger-worker -c etc/winchester.yaml \
  >"$run_dir/trigger-worker.log" 2>&1 </dev/null &
trigger_pid=$!
WINCHESTER_METRICS_PORT=$pipeline_port setsid node bin/winchester.js pipeline-worker -c etc/winchester.yaml \
  >"$run_dir/pipeline-worker.log" 2>&1 </dev/null &
pipeline_pid=$!
printf "DEMO_PIDS='%s %s'\n" "$trigger_pid" "$pipeline_pid" >>"$run_dir/run.env"
say "trigger worker  pid $trigger_pid   http://127.0.0.1:$trigger_port/metrics   log $run_dir/trigger-worker.log"
say "pipeline worker pid $pipeline_pid   http://127.0.0.1:$pipeline_port/metrics   log $run_dir/pipeline-worker.log"

wait_ready() { # name pid port log
  local i
  for ((i = 0; i < 900; i++)); do
    # Only whether it still runs: just after `… &` the child may not have exec'd node yet, so its command
    # line is still this script's (is_worker, which checks it, is for stopping a recorded pid later).
    if ! kill -0 "$2" 2>/dev/null; then
      say "demo: the $1 exited during start-up; last lines of $4:" >&2
      tail -n 15 "$4" | cut -c1-400 >&2
      return 1
    fi
    if node -e "fetch('http://127.0.0.1:$3/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  say "demo: the $1 is not ready after 90 s (http://127.0.0.1:$3/readyz); see $4" >&2
  return 1
}
wait_ready 'trigger worker' "$trigger_pid" "$trigger_port" "$run_dir/trigger-worker.log"
wait_ready 'pipeline worker' "$pipeline_pid" "$pipeline_port" "$run_dir/pipeline-worker.log"
say 'both workers ready (/readyz)'

say
say "== 4. workload: $instances instances over $days days (seed $seed, $ops operations per instance and day)"
winchester generate --seed "$seed" --instances "$instances" --days "$days" --ops-per-day "$ops" --duplicates 0.01 \
  -o "$run_dir/notifications.jsonl"
produced=$(grep -c . "$run_dir/notifications.jsonl")
winchester produce -c etc/winchester.yaml "$run_dir/notifications.jsonl"
clock=$(tool clock-after "$run_dir/notifications.jsonl")
say "advancing the event-time clock to $clock (2 days and an hour past the last event: every stream closes)"
winchester produce -c etc/winchester.yaml --advance-clock "$clock" --timeout 120

say
say '== 5. progress (from the workers'"'"' /metrics)'
tool watch "$trigger_port" "$pipeline_port" "$produced" "$timeout"

tool summary "$run_dir"
say "  metrics                 http://127.0.0.1:$trigger_port/metrics (trigger worker), http://127.0.0.1:$pipeline_port/metrics (pipeline worker)"
say "  logs                    $run_dir/trigger-worker.log, $run_dir/pipeline-worker.log"
if [[ "$keep" == 0 ]]; then
  say "  workers                 stopping now (--stop-after)"
else
  say "  workers                 still running (pids $trigger_pid $pipeline_pid) so you can scrape them"
  say "  stop                    npm run demo -- --stop"
  say "  Kafka and PostgreSQL stay up (npm run infra:down stops them)."
fi
