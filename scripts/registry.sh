#!/usr/bin/env bash
# A real Confluent-compatible schema registry (Apicurio Registry 3.0.9, in-memory storage) for
# development and tests, built from Maven Central by tools/registry and run as a plain process (no Docker).
# See docs/infrastructure.md and tools/registry/README.md.
#
#   scripts/registry.sh up       build once (cached in .cache/registry/3.0.9), start it unless running, wait
#                                until it answers, write $INFRA_DIR/registry.env (SCHEMA_REGISTRY_URL)
#   scripts/registry.sh down     stop what `up` started, remove registry.env
#   scripts/registry.sh status   show it; exit 0 only when it answers
#
# Settings (environment): INFRA_DIR (default .infra), REGISTRY_PORT (default 18081),
# REGISTRY_READY_TIMEOUT (seconds, default 120), REGISTRY_CACHE_DIR (default .cache/registry),
# MAVEN_REPO_LOCAL (Maven's local repository, default ~/.m2/repository).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INFRA_DIR="${INFRA_DIR:-$ROOT/.infra}"
PORT="${REGISTRY_PORT:-18081}"
READY_TIMEOUT="${REGISTRY_READY_TIMEOUT:-120}"
APICURIO_VERSION=3.0.9
# The served module versions the build stands in for 3.0.9 (tools/registry/README.md).
SERVED_VERSION=3.0.6
CDI_API=jakarta.enterprise:jakarta.enterprise.cdi-api:4.1.0
TOOL_DIR="$ROOT/tools/registry"
CACHE_DIR="${REGISTRY_CACHE_DIR:-$ROOT/.cache/registry}"
BUILD_DIR="$CACHE_DIR/$APICURIO_VERSION"
APP_DIR="$BUILD_DIR/quarkus-app"
GEN_REPO="$CACHE_DIR/generated-repo"
M2_REPO="${MAVEN_REPO_LOCAL:-$HOME/.m2/repository}"

REG_DIR="$INFRA_DIR/registry"
PID_FILE="$REG_DIR/registry.pid"
LOG_FILE="$REG_DIR/registry.log"
ENV_FILE="$INFRA_DIR/registry.env"
URL="http://127.0.0.1:$PORT/apis/ccompat/v7"
# Marks the java process as this checkout's registry, so a pid reused by another process, or a registry of
# another checkout on the same port, is never taken for ours.
MARKER="-Dwinchester.registry.cache=$BUILD_DIR"

SCRIPT_TAG=registry
# shellcheck source=lib/proc.sh
source "$ROOT/scripts/lib/proc.sh"

# ---------------------------------------------------------------------------------------------------
# processes

is_ours() { # is_ours <pid>: the process is this checkout's registry
  pid_alive "$1" && tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | grep -qxF -- "$MARKER"
}

# Prints the pid of the registry this checkout started, or nothing; forgets a stale pid file. A registry
# of ours still listening on the port after its pid file was lost (INFRA_DIR deleted) is adopted.
registry_pid() {
  local pid=''
  [[ -f "$PID_FILE" ]] && pid=$(cat "$PID_FILE" 2>/dev/null || true)
  if is_ours "$pid"; then
    printf '%s' "$pid"
    return 0
  fi
  rm -f "$PID_FILE"
  pid=$(port_pid "$PORT")
  if [[ -n "$pid" ]] && is_ours "$pid"; then
    mkdir -p "$REG_DIR"
    printf '%s\n' "$pid" >"$PID_FILE"
    printf '%s' "$pid"
  fi
}

answers() { # answers <timeout-seconds>: GET /subjects answers 200
  [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time "$1" "$URL/subjects" 2>/dev/null)" == 200 ]]
}

log_tail() { # log_tail <file> [lines]
  [[ -f "$1" ]] || return 0
  printf 'registry: last lines of %s:\n' "$1" >&2
  tail -n "${2:-25}" "$1" | sed -E 's/\x1b\[[0-9;]*m//g' | cut -c1-300 | sed 's/^/  /' >&2
}

# ---------------------------------------------------------------------------------------------------
# tools

JAVAC_BIN=''
JAR_BIN=''
require_registry_java() {
  require_java 17 \
    "Java not found (no java on PATH, JAVA_HOME unset): the registry needs a Java 17 JDK (apt-get install openjdk-17-jdk-headless)" \
    "Apicurio Registry $APICURIO_VERSION on Quarkus 3.33 needs Java 17 or newer"
}

require_build_tools() {
  local home=''
  [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/javac" ]] && home="$JAVA_HOME/bin/"
  JAVAC_BIN=$(command -v "${home}javac" 2>/dev/null) ||
    die "javac not found: building the registry needs a JDK, not only a JRE (apt-get install openjdk-17-jdk-headless)"
  JAR_BIN=$(command -v "${home}jar" 2>/dev/null) || die "the JDK's jar tool is not on PATH (it comes with javac)"
  command -v mvn >/dev/null 2>&1 ||
    die "Maven (mvn) not found on PATH: it builds the registry from Maven Central once (apt-get install maven)"
}

# ---------------------------------------------------------------------------------------------------
# build

# A hash of every file of tools/registry that goes into the build (not its build output or README): an
# edit there rebuilds the cached app.
source_hash() {
  (cd "$TOOL_DIR" && find . -path ./target -prune -o -type f ! -name README.md ! -name .gitignore -print |
    LC_ALL=C sort | xargs -d '\n' sha256sum) |
    sha256sum | cut -c1-16
}

app_ready() { [[ -f "$APP_DIR/quarkus-run.jar" && "$(cat "$BUILD_DIR/source.hash" 2>/dev/null)" == "$1" ]]; }

BUILD_LOG="$CACHE_DIR/build.log"

mvn_step() { # mvn_step <what> <maven args…>: runs Maven into the build log; on failure shows its end
  local what=$1
  shift
  printf '\n### %s: mvn %s\n' "$what" "$*" >>"$BUILD_LOG"
  if ! mvn -B -Dstyle.color=never "$@" >>"$BUILD_LOG" 2>&1; then
    grep -E '\[ERROR\]' "$BUILD_LOG" | grep -vE '^\[ERROR\] *$|Re-run Maven|Help 1|full stack trace|-> \[' |
      head -n 8 | cut -c1-300 | sed 's/^/  maven: /' >&2 || true
    log_tail "$BUILD_LOG" 15
    die "$what failed (is Maven Central reachable?). Full log: $BUILD_LOG"
  fi
}

# The jar standing in for apicurio-registry-config-definitions:3.0.9: the served 3.0.6 classes with the
# two changed ones compiled from tools/registry/patch, without 3.0.6's Jandex index (it would describe the
# old Info) or its Maven metadata.
build_patch_jar() {
  local out=$1 work="$CACHE_DIR/patch.work.$$" served cdi
  served="$M2_REPO/io/apicurio/apicurio-registry-config-definitions/$SERVED_VERSION/apicurio-registry-config-definitions-$SERVED_VERSION.jar"
  cdi="$M2_REPO/jakarta/enterprise/jakarta.enterprise.cdi-api/4.1.0/jakarta.enterprise.cdi-api-4.1.0.jar"
  [[ -f "$served" ]] || die "$served is missing after Maven fetched it (is MAVEN_REPO_LOCAL right?)"
  [[ -f "$cdi" ]] || die "$cdi is missing after Maven fetched it (is MAVEN_REPO_LOCAL right?)"
  rm -rf "$work"
  mkdir -p "$work/classes"
  (cd "$work/classes" && "$JAR_BIN" xf "$served")
  rm -rf "$work/classes/META-INF/jandex.idx" "$work/classes/META-INF/maven" "$work/classes/META-INF/MANIFEST.MF"
  printf '\n### javac patch/config-definitions\n' >>"$BUILD_LOG"
  if ! "$JAVAC_BIN" --release 17 -nowarn -cp "$cdi:$work/classes" -d "$work/classes" \
    "$TOOL_DIR"/patch/config-definitions/*.java >>"$BUILD_LOG" 2>&1; then
    log_tail "$BUILD_LOG" 15
    rm -rf "$work"
    die "compiling tools/registry/patch/config-definitions failed. Full log: $BUILD_LOG"
  fi
  "$JAR_BIN" cf "$out" -C "$work/classes" .
  rm -rf "$work"
}

build_app() {
  local hash=$1 started patch_jar partial
  started=$(now_ms)
  require_build_tools
  mkdir -p "$CACHE_DIR"
  : >"$BUILD_LOG"
  say "building Apicurio Registry $APICURIO_VERSION (once per change of tools/registry; minutes; log: $BUILD_LOG)"
  mvn_step 'fetching the served config modules' -q dependency:get \
    -Dartifact="io.apicurio:apicurio-registry-config-index-deployment:$SERVED_VERSION" -Dtransitive=false
  mvn_step 'fetching the served config modules' -q dependency:get \
    -Dartifact="io.apicurio:apicurio-registry-config-definitions:$SERVED_VERSION" -Dtransitive=false
  mvn_step 'fetching the CDI API (to compile the patch)' -q dependency:get -Dartifact="$CDI_API" -Dtransitive=false

  # The build-local repository is made afresh, so it holds exactly what this build installed.
  rm -rf "$GEN_REPO"
  mkdir -p "$GEN_REPO"
  patch_jar="$CACHE_DIR/apicurio-registry-config-definitions-$APICURIO_VERSION.jar"
  build_patch_jar "$patch_jar"
  mvn_step 'installing the config-definitions stand-in' -q install:install-file -DlocalRepositoryPath="$GEN_REPO" \
    -Dfile="$patch_jar" -DpomFile="$TOOL_DIR/standins/apicurio-registry-config-definitions-$APICURIO_VERSION.pom"
  mvn_step 'installing the config-index-deployment stand-in' -q install:install-file -DlocalRepositoryPath="$GEN_REPO" \
    -Dfile="$M2_REPO/io/apicurio/apicurio-registry-config-index-deployment/$SERVED_VERSION/apicurio-registry-config-index-deployment-$SERVED_VERSION.jar" \
    -DpomFile="$TOOL_DIR/standins/apicurio-registry-config-index-deployment-$APICURIO_VERSION.pom"
  rm -f "$patch_jar"

  # Maven caches what it resolved from the file repositories in ~/.m2 and never looks there again: a
  # changed stand-in POM or patch jar would be ignored in favour of the copy of an earlier build.
  rm -rf "$M2_REPO/io/apicurio/apicurio-registry/$APICURIO_VERSION" \
    "$M2_REPO/io/quarkus/quarkus-resteasy-client-jackson-parent/3.33.2" \
    "$M2_REPO/io/apicurio/apicurio-registry-config-definitions/$APICURIO_VERSION" \
    "$M2_REPO/io/apicurio/apicurio-registry-config-index-deployment/$APICURIO_VERSION"

  mvn_step 'building the Quarkus application' -q -f "$TOOL_DIR/pom.xml" -Dregistry.generated-repo="$GEN_REPO" \
    -Dquarkus.package.jar.type=fast-jar -DskipTests clean package
  [[ -f "$TOOL_DIR/target/quarkus-app/quarkus-run.jar" ]] ||
    die "Maven finished but $TOOL_DIR/target/quarkus-app/quarkus-run.jar is missing; see $BUILD_LOG"

  # Copied next to the cache key, then renamed: an interrupted copy never looks like a finished build.
  partial="$BUILD_DIR/quarkus-app.partial.$$"
  mkdir -p "$BUILD_DIR"
  rm -rf "$partial"
  cp -a "$TOOL_DIR/target/quarkus-app" "$partial"
  rm -rf "$APP_DIR" "$BUILD_DIR/source.hash"
  mv "$partial" "$APP_DIR"
  printf '%s\n' "$hash" >"$BUILD_DIR/source.hash"
  say "built in $(elapsed "$started"): $APP_DIR ($(du -sh "$APP_DIR" | cut -f1))"
}

ensure_app() {
  local hash
  hash=$(source_hash)
  app_ready "$hash" && return 0
  # One build at a time per cache (a second `up` waits for the first, then finds the app built).
  mkdir -p "$(dirname "$CACHE_DIR")"
  exec 8>"$CACHE_DIR.build.lock"
  flock -w 1200 8 || die "another build of the registry holds $CACHE_DIR.build.lock for 20 minutes"
  app_ready "$hash" || build_app "$hash"
  exec 8>&-
}

# ---------------------------------------------------------------------------------------------------
# run

start_process() {
  local pid
  # setsid: the registry outlives this script and a Ctrl-C aimed at the caller's terminal.
  # 9>&-: it must not inherit the lock on $REG_DIR/.lock.
  # The registry's three unused datasources (see KeepDatasourcesActive.java) stay active for injection,
  # with empty pools and addresses nobody listens on, so they never connect.
  setsid "$JAVA_BIN" -Xmx256m -XX:+ExitOnOutOfMemoryError -XX:TieredStopAtLevel=1 "$MARKER" \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$PORT" \
    -Dquarkus.datasource.postgresql.jdbc.url=jdbc:postgresql://127.0.0.1:1/unused \
    -Dquarkus.datasource.mysql.jdbc.url=jdbc:mysql://127.0.0.1:1/unused \
    -Dquarkus.datasource.mssql.jdbc.url='jdbc:sqlserver://127.0.0.1:1;databaseName=unused' \
    -Dquarkus.datasource.postgresql.jdbc.initial-size=0 -Dquarkus.datasource.postgresql.jdbc.min-size=0 \
    -Dquarkus.datasource.mysql.jdbc.initial-size=0 -Dquarkus.datasource.mysql.jdbc.min-size=0 \
    -Dquarkus.datasource.mssql.jdbc.initial-size=0 -Dquarkus.datasource.mssql.jdbc.min-size=0 \
    -Dapicurio.datasource.jdbc.initial-size=2 -Dapicurio.datasource.jdbc.min-size=2 \
    -Dapicurio.datasource.jdbc.max-size=10 \
    -jar "$APP_DIR/quarkus-run.jar" >"$LOG_FILE" 2>&1 </dev/null 9>&- 8>&- &
  pid=$!
  printf '%s\n' "$pid" >"$PID_FILE"
  printf '%s' "$pid"
}

wait_ready() { # wait_ready <pid> <started-ms>
  local pid=$1 deadline=$(($(date +%s) + READY_TIMEOUT))
  while (($(date +%s) < deadline)); do
    answers 2 && return 0
    if ! pid_alive "$pid"; then
      log_tail "$LOG_FILE"
      die "the registry exited during start-up; log: $LOG_FILE"
    fi
    sleep 0.5
  done
  log_tail "$LOG_FILE"
  stop_pid "$pid" 10
  rm -f "$PID_FILE"
  die "the registry did not answer GET $URL/subjects within ${READY_TIMEOUT}s (REGISTRY_READY_TIMEOUT); log: $LOG_FILE"
}

write_env() {
  local tmp="$ENV_FILE.tmp.$$"
  {
    printf '# Written by scripts/registry.sh up; read by scripts/test.mjs. Removed by registry.sh down.\n'
    printf 'SCHEMA_REGISTRY_URL=%s\n' "$URL"
  } >"$tmp"
  mv "$tmp" "$ENV_FILE"
}

lock() {
  mkdir -p "$REG_DIR"
  exec 9>"$REG_DIR/.lock"
  flock -w 1500 9 || die "another scripts/registry.sh is still running (lock $REG_DIR/.lock held for 25 minutes)"
}

cmd_up() {
  local started pid hash
  started=$(now_ms)
  lock
  rm -f "$ENV_FILE"
  command -v curl >/dev/null 2>&1 || die "curl is not on PATH (the readiness check uses it)"
  require_registry_java
  hash=$(source_hash)
  pid=$(registry_pid)
  if [[ -n "$pid" ]]; then
    if [[ "$(cat "$REG_DIR/app.hash" 2>/dev/null)" != "$hash" ]]; then
      say "tools/registry changed since the running registry (pid $pid) was built: restarting it"
    elif answers 5 || wait_ready "$pid" "$started"; then
      say "already running (pid $pid): $URL"
      write_env
      return 0
    fi
    stop_pid "$pid" 20
    rm -f "$PID_FILE"
  fi
  require_port_free "$PORT" '' REGISTRY_PORT
  ensure_app
  port_in_use "$PORT" && die "port $PORT was taken while the registry was being built; pick another with REGISTRY_PORT=<port>"
  printf '%s\n' "$hash" >"$REG_DIR/app.hash"
  pid=$(start_process)
  say "Apicurio Registry $APICURIO_VERSION starting (pid $pid, 127.0.0.1:$PORT, log $LOG_FILE)"
  wait_ready "$pid" "$started"
  write_env
  say "up in $(elapsed "$started"): SCHEMA_REGISTRY_URL=$URL (also in $ENV_FILE)"
}

cmd_down() {
  local pid
  lock
  rm -f "$ENV_FILE"
  pid=$(registry_pid)
  if [[ -z "$pid" ]]; then
    say "not running"
    return 0
  fi
  say "stopping the registry (pid $pid)"
  stop_pid "$pid" 20
  rm -f "$PID_FILE"
}

cmd_status() {
  local pid
  pid=$(registry_pid)
  if [[ -z "$pid" ]]; then
    printf 'registry  stopped\n'
    return 1
  fi
  if answers 3; then
    printf 'registry  running   pid %s  %s\n' "$pid" "$URL"
    return 0
  fi
  printf 'registry  running   pid %s  but GET %s/subjects does not answer (starting? log: %s)\n' "$pid" "$URL" "$LOG_FILE"
  return 1
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
*)
  printf 'usage: %s up|down|status\n' "$0" >&2
  exit 2
  ;;
esac
