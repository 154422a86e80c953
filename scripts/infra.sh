#!/usr/bin/env bash
# Local Kafka (KRaft, one combined broker/controller) and PostgreSQL for development and tests,
# run as plain processes (no Docker). See docs/infrastructure.md.
#
#   scripts/infra.sh up       start what is not running, wait until both answer real requests,
#                             write .infra/env (KAFKA_BROKERS, DATABASE_URL)
#   scripts/infra.sh down     stop what `up` started (data is kept); `down --purge` also deletes the data
#   scripts/infra.sh status   show each service; exit 0 only when both answer
#
# KAFKA_BROKERS / DATABASE_URL, when set, name services you run yourself: they are checked, never started.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INFRA_DIR="${INFRA_DIR:-$ROOT/.infra}"
KAFKA_VERSION="${KAFKA_VERSION:-3.9.2}"
KAFKA_CACHE_DIR="${KAFKA_CACHE_DIR:-$ROOT/.cache/kafka/$KAFKA_VERSION}"
KAFKA_PORT="${INFRA_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${INFRA_KAFKA_CONTROLLER_PORT:-19093}"
KAFKA_HEAP="${INFRA_KAFKA_HEAP:-512m}"
PG_PORT="${INFRA_PG_PORT:-54329}"
READY_TIMEOUT="${INFRA_READY_TIMEOUT:-90}" # seconds, per service
PG_USER=winchester
PG_PASSWORD=winchester
PG_DATABASE=winchester

KAFKA_DIR="$INFRA_DIR/kafka"
KAFKA_PID_FILE="$KAFKA_DIR/kafka.pid"
PG_DIR="$INFRA_DIR/postgres"
PG_DATA="$PG_DIR/data"

SCRIPT_TAG=infra
# shellcheck source=lib/proc.sh
source "$ROOT/scripts/lib/proc.sh"

# ---------------------------------------------------------------------------------------------------
# readiness

probe() { # probe kafka|postgres <address> <timeout-seconds> [pid]
  local args=("$ROOT/scripts/infra-probe.ts" "$1" "$2" --timeout-ms "$(($3 * 1000))")
  [[ -n "${4:-}" ]] && args+=(--pid "$4")
  (cd "$ROOT" && node --import tsx "${args[@]}")
}

require_node_modules() {
  command -v node >/dev/null 2>&1 || die "node is not on PATH: install Node.js 20 (the readiness probes are node scripts)"
  [[ -d "$ROOT/node_modules/kafkajs" && -d "$ROOT/node_modules/tsx" ]] ||
    die "node_modules is missing or incomplete: run 'npm ci' first (the readiness probes use kafkajs and slonik)"
}

# ---------------------------------------------------------------------------------------------------
# Kafka

require_kafka_java() {
  require_java 11 \
    "Java not found (no java on PATH, JAVA_HOME unset): the local Kafka broker needs a Java 17 runtime (e.g. apt-get install openjdk-17-jre-headless), or set KAFKA_BROKERS to a broker you run yourself" \
    "Kafka $KAFKA_VERSION needs Java 11 or newer (17 recommended)"
}

# Downloads the broker's jars once into the cache with Maven; later runs reuse them.
ensure_kafka_jars() {
  [[ -f "$KAFKA_CACHE_DIR/lib/.complete" ]] && return 0
  command -v mvn >/dev/null 2>&1 ||
    die "Maven (mvn) not found on PATH: it is needed once to fetch Kafka $KAFKA_VERSION's jars from Maven Central into $KAFKA_CACHE_DIR (apt-get install maven), or set KAFKA_BROKERS to a broker you run yourself"
  local started partial log
  started=$(now_ms)
  mkdir -p "$KAFKA_CACHE_DIR"
  partial="$KAFKA_CACHE_DIR/lib.partial.$$"
  log="$KAFKA_CACHE_DIR/maven.log"
  say "fetching Kafka $KAFKA_VERSION jars with Maven (first run only; log: $log)"
  rm -rf "$partial"
  if ! mvn -B -q -Dstyle.color=never -f "$ROOT/infra/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$partial" >"$log" 2>&1; then
    rm -rf "$partial"
    grep -E 'ERROR|Could not|resolve' "$log" | head -n 5 | sed 's/^/  maven: /' >&2 || true
    die "Maven could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION and its dependencies (is Maven Central reachable? is the version published?). Full log: $log"
  fi
  [[ -f "$partial/kafka_2.13-$KAFKA_VERSION.jar" ]] || die "Maven finished but $partial lacks kafka_2.13-$KAFKA_VERSION.jar; see $log"
  touch "$partial/.complete"
  rm -rf "$KAFKA_CACHE_DIR/lib"
  mv "$partial" "$KAFKA_CACHE_DIR/lib"
  say "Kafka jars cached in $KAFKA_CACHE_DIR/lib ($(elapsed "$started"))"
}

kafka_config() {
  cat <<EOF
# Written by scripts/infra.sh: one KRaft node acting as broker and controller, for development and tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$KAFKA_DIR/data
# Topics are created explicitly (by the workers' start-up and by tests), never by a typo in a consumer.
auto.create.topics.enable=false
delete.topic.enable=true
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
offsets.topic.segment.bytes=8388608
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
transaction.state.log.segment.bytes=8388608
# Groups form at once instead of waiting 3 s for more members; short sessions allowed for fast tests.
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
# Small segments and short retention: this is scratch data.
log.segment.bytes=8388608
log.retention.hours=24
log.retention.check.interval.ms=60000
metadata.log.segment.bytes=8388608
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=16777216
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
EOF
}

kafka_log4j() {
  cat <<'EOF'
# Written by scripts/infra.sh: the broker logs to files under .infra/kafka/logs, nothing on the console.
log4j.rootLogger=INFO, server
log4j.appender.server=org.apache.log4j.RollingFileAppender
log4j.appender.server.File=${kafka.logs.dir}/server.log
log4j.appender.server.MaxFileSize=20MB
log4j.appender.server.MaxBackupIndex=2
log4j.appender.server.layout=org.apache.log4j.PatternLayout
log4j.appender.server.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
EOF
}

# Prints the pid of the broker this checkout started, or nothing; forgets a stale pid file.
kafka_pid() {
  local pid
  [[ -f "$KAFKA_PID_FILE" ]] || return 0
  pid=$(cat "$KAFKA_PID_FILE" 2>/dev/null || true)
  # The pid may have been reused by an unrelated process after a crash or reboot: check it is our broker.
  if pid_alive "$pid" && tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF "$KAFKA_DIR/server.properties"; then
    printf '%s' "$pid"
  else
    rm -f "$KAFKA_PID_FILE"
  fi
}

kafka_log_tail() {
  local f
  for f in "$KAFKA_DIR/logs/stdout.log" "$KAFKA_DIR/logs/server.log"; do
    [[ -s "$f" ]] || continue
    say "last lines of $f:"
    grep -E 'ERROR|FATAL|Exception|Caused by' "$f" | tail -n 8 | cut -c1-300 | sed 's/^/  /' >&2 || true
  done
}

# Formats the storage directory unless it already belongs to our cluster id (then it is reused as is).
ensure_kafka_storage() {
  local data="$KAFKA_DIR/data" idfile="$KAFKA_DIR/cluster.id" id=''
  [[ -f "$idfile" ]] && id=$(cat "$idfile")
  if [[ -n "$id" && -f "$data/meta.properties" ]] &&
    grep -qxF "cluster.id=$id" "$data/meta.properties" && grep -qxF "node.id=1" "$data/meta.properties"; then
    return 0
  fi
  rm -rf "$data"
  # A Kafka cluster id is 16 random bytes in unpadded URL-safe base64. One that starts with '-' would be
  # taken for an option by the storage tool's argument parser (1 in 64), so draw again.
  id='-'
  while [[ "$id" == -* ]]; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
  done
  printf '%s\n' "$id" >"$idfile"
  if ! "$JAVA_BIN" -Xmx256m -Dlog4j.configuration="file:$KAFKA_DIR/log4j.properties" -Dkafka.logs.dir="$KAFKA_DIR/logs" \
    -cp "$KAFKA_CACHE_DIR/lib/*" kafka.tools.StorageTool format -t "$id" -c "$KAFKA_DIR/server.properties" \
    >"$KAFKA_DIR/logs/format.log" 2>&1; then
    sed 's/^/  /' "$KAFKA_DIR/logs/format.log" | tail -n 10 >&2
    die "formatting Kafka storage in $data failed (log: $KAFKA_DIR/logs/format.log)"
  fi
}

start_kafka_process() {
  local pid
  # setsid: the broker outlives this script and is not hit by a Ctrl-C aimed at the caller's terminal.
  # 9>&-: it must not inherit the lock on .infra/.lock, or the next infra.sh would wait for it forever.
  setsid "$JAVA_BIN" -Xms128m -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true -Dlog4j.configuration="file:$KAFKA_DIR/log4j.properties" \
    -Dkafka.logs.dir="$KAFKA_DIR/logs" -cp "$KAFKA_CACHE_DIR/lib/*" \
    kafka.Kafka "$KAFKA_DIR/server.properties" >"$KAFKA_DIR/logs/stdout.log" 2>&1 </dev/null 9>&- &
  pid=$!
  printf '%s\n' "$pid" >"$KAFKA_PID_FILE"
  printf '%s' "$pid"
}

kafka_up() {
  local started pid config reused
  started=$(now_ms)
  if [[ -n "${KAFKA_BROKERS:-}" ]]; then
    say "KAFKA_BROKERS=$KAFKA_BROKERS is set: checking it, not starting a broker"
    probe kafka "$KAFKA_BROKERS" "$READY_TIMEOUT" >&2 ||
      die "Kafka at KAFKA_BROKERS=$KAFKA_BROKERS does not answer; start it, or unset KAFKA_BROKERS to let this script run one"
    KAFKA_ADDRESS="$KAFKA_BROKERS"
    return 0
  fi
  KAFKA_ADDRESS="127.0.0.1:$KAFKA_PORT"
  mkdir -p "$KAFKA_DIR/logs"
  config=$(kafka_config)
  pid=$(kafka_pid)
  if [[ -n "$pid" ]]; then
    if [[ "$config" == "$(cat "$KAFKA_DIR/server.properties" 2>/dev/null)" ]]; then
      say "Kafka already running (pid $pid); checking it answers"
      if probe kafka "$KAFKA_ADDRESS" "$READY_TIMEOUT" "$pid" >&2; then return 0; fi
      say "the running broker does not answer: restarting it"
    else
      say "Kafka settings changed (ports?): restarting the running broker (pid $pid)"
    fi
    stop_pid "$pid" 30
    rm -f "$KAFKA_PID_FILE"
  fi
  require_kafka_java
  require_port_free "$KAFKA_PORT" "Kafka's client listener" INFRA_KAFKA_PORT
  require_port_free "$KAFKA_CONTROLLER_PORT" "Kafka's controller listener" INFRA_KAFKA_CONTROLLER_PORT
  ensure_kafka_jars
  printf '%s\n' "$config" >"$KAFKA_DIR/server.properties"
  kafka_log4j >"$KAFKA_DIR/log4j.properties"
  reused=yes
  [[ -f "$KAFKA_DIR/data/meta.properties" ]] || reused=no
  ensure_kafka_storage
  pid=$(start_kafka_process)
  say "Kafka $KAFKA_VERSION starting (pid $pid, 127.0.0.1:$KAFKA_PORT, logs in $KAFKA_DIR/logs)"
  if probe kafka "$KAFKA_ADDRESS" "$READY_TIMEOUT" "$pid" >&2; then
    say "Kafka ready ($(elapsed "$started"))"
    return 0
  fi
  kafka_log_tail
  # A broker killed mid-write can leave storage it refuses to load; scratch data, so start afresh once.
  if [[ "$reused" == yes ]] && ! pid_alive "$pid"; then
    say "the broker exited on start-up with reused storage: reformatting $KAFKA_DIR/data and retrying once"
    rm -f "$KAFKA_PID_FILE" "$KAFKA_DIR/cluster.id"
    ensure_kafka_storage
    pid=$(start_kafka_process)
    if probe kafka "$KAFKA_ADDRESS" "$READY_TIMEOUT" "$pid" >&2; then
      say "Kafka ready ($(elapsed "$started"))"
      return 0
    fi
    kafka_log_tail
  fi
  pid_alive "$pid" && stop_pid "$pid" 10
  rm -f "$KAFKA_PID_FILE"
  die "Kafka did not become ready; see $KAFKA_DIR/logs/server.log and $KAFKA_DIR/logs/stdout.log"
}

kafka_down() {
  local pid
  if [[ -n "${KAFKA_BROKERS:-}" ]]; then
    say "KAFKA_BROKERS is set: leaving that broker alone"
    return 0
  fi
  pid=$(kafka_pid)
  if [[ -z "$pid" ]]; then
    say "Kafka not running"
    return 0
  fi
  say "stopping Kafka (pid $pid)"
  stop_pid "$pid" 30
  rm -f "$KAFKA_PID_FILE"
}

# ---------------------------------------------------------------------------------------------------
# PostgreSQL

PG_BIN=''
find_pg_bin() {
  local candidate
  if [[ -n "${PG_BIN_DIR:-}" ]]; then
    [[ -x "$PG_BIN_DIR/postgres" && -x "$PG_BIN_DIR/initdb" && -x "$PG_BIN_DIR/pg_ctl" ]] ||
      die "PostgreSQL server programs not found in PG_BIN_DIR=$PG_BIN_DIR (need postgres, initdb, pg_ctl): install PostgreSQL (apt-get install postgresql-15) or set DATABASE_URL to a server you run yourself"
    PG_BIN="$PG_BIN_DIR"
    return 0
  fi
  # Newest installed major version first.
  for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -V -r); do
    if [[ -x "$candidate/postgres" && -x "$candidate/initdb" && -x "$candidate/pg_ctl" ]]; then
      PG_BIN="$candidate"
      return 0
    fi
  done
  if command -v pg_config >/dev/null 2>&1; then
    candidate=$(pg_config --bindir 2>/dev/null || true)
    if [[ -x "$candidate/postgres" && -x "$candidate/initdb" && -x "$candidate/pg_ctl" ]]; then
      PG_BIN="$candidate"
      return 0
    fi
  fi
  die "PostgreSQL server programs not found (looked in /usr/lib/postgresql/*/bin and pg_config --bindir): install PostgreSQL (apt-get install postgresql-15), point PG_BIN_DIR at its bin directory, or set DATABASE_URL to a server you run yourself"
}

# PostgreSQL refuses to run as root, so as root the private cluster belongs to the 'postgres' user.
as_pg() {
  if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi
}

require_pg_user() {
  ((EUID == 0)) || return 0
  id -u postgres >/dev/null 2>&1 ||
    die "running as root, and PostgreSQL will not run as root: create a 'postgres' system user (useradd --system postgres), run as a normal user, or set DATABASE_URL"
  mkdir -p "$PG_DIR"
  chown postgres: "$PG_DIR"
  runuser -u postgres -- test -w "$PG_DIR" ||
    die "the 'postgres' user cannot write $PG_DIR: a parent directory is probably not searchable by other users (chmod o+x it), or set DATABASE_URL"
}

pg_running_pid() {
  local pid
  [[ -f "$PG_DATA/postmaster.pid" ]] || return 0
  pid=$(head -n1 "$PG_DATA/postmaster.pid" 2>/dev/null || true)
  if pid_alive "$pid" && tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF "$PG_DATA"; then
    printf '%s' "$pid"
  fi
}

pg_url() { printf 'postgres://%s:%s@127.0.0.1:%s/%s' "$PG_USER" "$PG_PASSWORD" "$PG_PORT" "$PG_DATABASE"; }

pg_psql() { # runs SQL as the cluster's superuser over TCP
  PGPASSWORD=$(cat "$PG_DIR/superuser.password") "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 \
    -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres "$@"
}

pg_init() {
  local pwfile="$PG_DIR/superuser.password"
  say "creating a private PostgreSQL cluster in $PG_DATA"
  rm -rf "$PG_DATA"
  # The superuser's password lives next to the cluster (mode 600); tests use the unprivileged role.
  head -c 18 /dev/urandom | base64 | tr '+/' 'ab' >"$pwfile"
  chmod 600 "$pwfile"
  ((EUID == 0)) && chown postgres: "$pwfile"
  if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --pwfile="$pwfile" --auth-host=scram-sha-256 \
    --auth-local=peer --encoding=UTF8 --no-locale --no-sync >"$PG_DIR/initdb.log" 2>&1; then
    tail -n 10 "$PG_DIR/initdb.log" | sed 's/^/  /' >&2
    die "initdb failed (log: $PG_DIR/initdb.log)"
  fi
}

pg_start() {
  # Settings on the command line rather than in postgresql.conf, so a changed port applies on next start.
  # Durability against an OS crash is traded for speed (fsync and full-page writes off: throw-away test
  # data). A crash of PostgreSQL alone must lose no committed transaction, so synchronous_commit stays on:
  # the chaos suite restarts it with SIGQUIT (crash recovery), and with synchronous_commit off the last
  # commits (a pipeline worker's completion mark) could vanish and a batch run twice.
  if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DIR/postgres.log" -w -t "$READY_TIMEOUT" start \
    -o "-c port=$PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=200 -c fsync=off -c full_page_writes=off -c shared_buffers=128MB" \
    >"$PG_DIR/pg_ctl.log" 2>&1 9>&-; then
    tail -n 10 "$PG_DIR/postgres.log" 2>/dev/null | sed 's/^/  /' >&2 || true
    die "PostgreSQL did not start (log: $PG_DIR/postgres.log)"
  fi
}

pg_bootstrap() {
  pg_psql -c "DO \$\$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
        CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
      END IF;
    END \$\$;" >/dev/null
  if [[ "$(pg_psql -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DATABASE'")" != 1 ]]; then
    pg_psql -c "CREATE DATABASE $PG_DATABASE OWNER $PG_USER" >/dev/null
  fi
}

pg_up() {
  local started pid
  started=$(now_ms)
  if [[ -n "${DATABASE_URL:-}" ]]; then
    say "DATABASE_URL is set: checking it, not starting PostgreSQL"
    probe postgres "$DATABASE_URL" "$READY_TIMEOUT" >&2 ||
      die "PostgreSQL at DATABASE_URL does not answer; start it, or unset DATABASE_URL to let this script run one"
    PG_ADDRESS="$DATABASE_URL"
    return 0
  fi
  PG_ADDRESS=$(pg_url)
  find_pg_bin
  require_pg_user
  pid=$(pg_running_pid)
  if [[ -n "$pid" ]] && ! tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF "port=$PG_PORT"; then
    say "PostgreSQL is running on another port than $PG_PORT: restarting it"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null 2>&1 || stop_pid "$pid" 30
    pid=''
  fi
  if [[ -n "$pid" ]]; then
    say "PostgreSQL already running (pid $pid)"
  else
    # A crash leaves postmaster.pid behind; if its pid now belongs to another process, postgres would
    # refuse to start, and we already know it is not ours.
    rm -f "$PG_DATA/postmaster.pid"
    require_port_free "$PG_PORT" "PostgreSQL" INFRA_PG_PORT
    [[ -f "$PG_DATA/PG_VERSION" && -s "$PG_DIR/superuser.password" ]] || pg_init
    pg_start
    pid=$(pg_running_pid)
    say "PostgreSQL started (pid $pid, 127.0.0.1:$PG_PORT, log $PG_DIR/postgres.log)"
  fi
  pg_bootstrap
  probe postgres "$PG_ADDRESS" "$READY_TIMEOUT" "$pid" >&2 || die "PostgreSQL started but does not answer at $PG_ADDRESS"
  say "PostgreSQL ready ($(elapsed "$started"))"
}

pg_down() {
  local pid
  if [[ -n "${DATABASE_URL:-}" ]]; then
    say "DATABASE_URL is set: leaving that server alone"
    return 0
  fi
  pid=$(pg_running_pid)
  if [[ -z "$pid" ]]; then
    say "PostgreSQL not running"
    return 0
  fi
  say "stopping PostgreSQL (pid $pid)"
  find_pg_bin
  if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 stop >/dev/null 2>&1; then
    stop_pid "$pid" 10
  fi
}

# ---------------------------------------------------------------------------------------------------
# commands

write_env() {
  local tmp="$INFRA_DIR/env.tmp.$$"
  {
    printf '# Written by scripts/infra.sh up; read by scripts/test.mjs. Removed by infra.sh down.\n'
    printf 'KAFKA_BROKERS=%s\n' "$KAFKA_ADDRESS"
    printf 'DATABASE_URL=%s\n' "$PG_ADDRESS"
  } >"$tmp"
  mv "$tmp" "$INFRA_DIR/env"
}

lock() {
  mkdir -p "$INFRA_DIR"
  exec 9>"$INFRA_DIR/.lock"
  flock -w 300 9 || die "another scripts/infra.sh is still running (lock $INFRA_DIR/.lock held for 5 minutes)"
}

# Everything that can be checked without starting a service, so a missing tool or a taken port is reported
# in seconds, before anything has been started.
preflight() {
  if [[ -z "${KAFKA_BROKERS:-}" ]]; then
    require_kafka_java
    if [[ -z "$(kafka_pid)" ]]; then
      require_port_free "$KAFKA_PORT" "Kafka's client listener" INFRA_KAFKA_PORT
      require_port_free "$KAFKA_CONTROLLER_PORT" "Kafka's controller listener" INFRA_KAFKA_CONTROLLER_PORT
    fi
  fi
  if [[ -z "${DATABASE_URL:-}" ]]; then
    find_pg_bin
    require_pg_user
    [[ -n "$(pg_running_pid)" ]] || require_port_free "$PG_PORT" "PostgreSQL" INFRA_PG_PORT
  fi
  [[ -n "${KAFKA_BROKERS:-}" ]] || ensure_kafka_jars
}

cmd_up() {
  local started
  started=$(now_ms)
  require_node_modules
  lock
  rm -f "$INFRA_DIR/env"
  preflight
  pg_up
  kafka_up
  write_env
  say "up in $(elapsed "$started"): KAFKA_BROKERS=$KAFKA_ADDRESS DATABASE_URL=$PG_ADDRESS (also in $INFRA_DIR/env)"
}

cmd_down() {
  local purge=${1:-}
  lock
  rm -f "$INFRA_DIR/env"
  kafka_down
  pg_down
  if [[ "$purge" == --purge ]]; then
    say "deleting $KAFKA_DIR and $PG_DIR"
    rm -rf "$KAFKA_DIR" "$PG_DIR"
  fi
}

cmd_status() {
  local ok=0 pid
  require_node_modules
  if [[ -n "${KAFKA_BROKERS:-}" ]]; then
    printf 'kafka     external  %s\n' "$KAFKA_BROKERS"
    probe kafka "$KAFKA_BROKERS" 3 || ok=1
  else
    pid=$(kafka_pid)
    if [[ -n "$pid" ]]; then
      printf 'kafka     running   pid %s  127.0.0.1:%s  (%s)\n' "$pid" "$KAFKA_PORT" "$KAFKA_DIR"
      probe kafka "127.0.0.1:$KAFKA_PORT" 3 "$pid" || ok=1
    else
      printf 'kafka     stopped\n'
      ok=1
    fi
  fi
  if [[ -n "${DATABASE_URL:-}" ]]; then
    printf 'postgres  external\n'
    probe postgres "$DATABASE_URL" 3 || ok=1
  else
    pid=$(pg_running_pid)
    if [[ -n "$pid" ]]; then
      printf 'postgres  running   pid %s  127.0.0.1:%s  (%s)\n' "$pid" "$PG_PORT" "$PG_DATA"
      probe postgres "$(pg_url)" 3 "$pid" || ok=1
    else
      printf 'postgres  stopped\n'
      ok=1
    fi
  fi
  return "$ok"
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down "${2:-}" ;;
status) cmd_status ;;
*)
  printf 'usage: %s up|down [--purge]|status\n' "$0" >&2
  exit 2
  ;;
esac
