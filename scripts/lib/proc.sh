# Shared by scripts/infra.sh and scripts/registry.sh (sourced, not run): messages, timing, processes,
# ports and the Java check, so the two service scripts report and stop processes the same way.
#
# The caller sets SCRIPT_TAG (the prefix of every message, e.g. 'infra') before sourcing, and runs under
# `set -euo pipefail`.

say() { printf '%s: %s\n' "$SCRIPT_TAG" "$*" >&2; }
die() {
  printf '%s: error: %s\n' "$SCRIPT_TAG" "$*" >&2
  exit 1
}
now_ms() { date +%s%3N; }
elapsed() { printf '%d.%ds' $((($(now_ms) - $1) / 1000)) $(((($(now_ms) - $1) % 1000) / 100)); }

# ---------------------------------------------------------------------------------------------------
# processes and ports

pid_alive() { [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; }

# A short description of a process for error messages: pid, command line (clipped) and working directory.
describe_pid() {
  local pid=$1 cmd cwd
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-240) || cmd=''
  cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null) || cwd='?'
  printf 'pid %s (%s), started in %s' "$pid" "${cmd:-unknown command}" "$cwd"
}

port_in_use() {
  local port=$1
  if command -v ss >/dev/null 2>&1; then
    [[ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]] && return 0
  fi
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

# Prints the pid listening on the port, or nothing when no listener is visible to this user.
port_pid() {
  local port=$1 pid=''
  if command -v ss >/dev/null 2>&1; then
    pid=$(ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2) || pid=''
  fi
  if [[ -z "$pid" ]] && command -v lsof >/dev/null 2>&1; then
    pid=$(lsof -nP -t -iTCP:"$port" -sTCP:LISTEN 2>/dev/null | head -n1) || pid=''
  fi
  printf '%s' "$pid"
}

# Describes the listener on the port for an error message.
port_owner() {
  local pid
  pid=$(port_pid "$1")
  if [[ -n "$pid" ]]; then describe_pid "$pid"; else printf 'a process this user cannot identify'; fi
}

# require_port_free <port> <what, or '' when the script serves one port> <variable that picks the port>
require_port_free() {
  local port=$1 what=$2 override=$3 needed=''
  [[ -n "$what" ]] && needed=" (needed for $what)"
  if port_in_use "$port"; then
    die "port $port$needed is already in use by $(port_owner "$port"). Stop that process, or pick another port with $override=<port>."
  fi
}

# Sends SIGTERM, waits up to $2 seconds, then SIGKILL.
stop_pid() {
  local pid=$1 grace=$2 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < grace * 10; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  say "pid $pid still running after ${grace}s: sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
}

# ---------------------------------------------------------------------------------------------------
# Java

# require_java <minimum major version> <message when there is no java> <what needs it, for a too-old one>
# Sets JAVA_BIN to $JAVA_HOME/bin/java when that exists, else the java on PATH, and checks its version
# (both the old "1.8.0_x" and the new "17.0.x" forms).
JAVA_BIN=''
require_java() {
  local minimum=$1 missing=$2 needs=$3 home='' version major
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    home="$JAVA_HOME/bin/"
  fi
  JAVA_BIN=$(command -v "${home}java" 2>/dev/null) || die "$missing"
  version=$("$JAVA_BIN" -version 2>&1 | head -n1) || die "'$JAVA_BIN -version' failed: $version"
  major=$(sed -E 's/.*version "([0-9]+)(\.([0-9]+))?.*/\1 \3/' <<<"$version")
  [[ "${major%% *}" == 1 ]] && major=${major#* } || major=${major%% *}
  if ! [[ "$major" =~ ^[0-9]+$ ]] || ((major < minimum)); then
    die "$needs; $JAVA_BIN is: $version"
  fi
}
