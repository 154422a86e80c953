#!/usr/bin/env bash
# The main job, end to end as far as the product goes today:
#   1. bring up the local Kafka broker and PostgreSQL (scripts/infra.sh) and show they answer;
#   2. validate the default job in etc/ (the StackTach usage audit) with `winchester check`;
#   3. generate a realistic Nova workload (notigen templates) and replay it through the real
#      distiller, triggers and stream engine with `winchester replay`, then summarise what fired.
# Usage: npm run demo [-- --instances N --days N --seed N]
# Leaves Kafka and PostgreSQL running; `npm run infra:down` stops them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

instances=200 days=3 seed=42
while [[ $# -gt 0 ]]; do
  case "$1" in
    --instances) instances=$2; shift 2 ;;
    --days) days=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    *) echo "demo: unknown option $1 (use --instances N, --days N, --seed N)" >&2; exit 2 ;;
  esac
done

if [[ ! -d node_modules || ! -f dist/main.js ]]; then
  echo '== installing (npm ci)'
  npm ci --no-audit --no-fund
fi
winchester() { node bin/winchester.js "$@"; }

echo '== 1. infrastructure: Kafka (KRaft) and PostgreSQL'
npm run --silent infra:up
npm run --silent infra:status

echo
echo '== 2. configuration: winchester check -c etc/winchester.yaml'
winchester check -c etc/winchester.yaml

work=.infra/demo
mkdir -p "$work"
echo
echo "== 3. workload: $instances instances over $days days (seed $seed)"
winchester generate --seed "$seed" --instances "$instances" --days "$days" --duplicates 0.01 -o "$work/notifications.jsonl"

# The day after the last generated day closes every stream that can still fire or expire.
until=$(node -e "const d=new Date(Date.UTC(2015,1,1)); d.setUTCDate(d.getUTCDate()+Number(process.argv[1])+3); console.log(d.toISOString())" "$days")
echo
echo "== 4. replay through the stream engine (event time, until $until)"
winchester replay -c etc/winchester.yaml --until "$until" "$work/notifications.jsonl" > "$work/streams.jsonl"

node - "$work/streams.jsonl" <<'JS'
const { readFileSync } = require('node:fs');
const lines = readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const by = new Map();
for (const s of lines) {
  const k = `${s.trigger} ${s.kind} -> ${s.pipeline ?? '(no pipeline)'}`;
  by.set(k, (by.get(k) ?? 0) + 1);
}
console.log(`\n${lines.length} streams closed:`);
for (const [k, n] of by) console.log(`  ${String(n).padStart(6)}  ${k}`);
const ex = lines.find((s) => s.kind === 'fire');
if (ex) {
  console.log('\nexample fired stream:');
  console.log(`  distinguished_by ${JSON.stringify(ex.distinguished_by)}`);
  console.log(`  ${ex.events.length} events from ${ex.first_event} to ${ex.last_event}:`);
  for (const e of ex.events) console.log(`    ${e.timestamp}  ${e.event_type}`);
}
JS
echo
echo "Output in $work/. Kafka and PostgreSQL are still running: 'npm run infra:down' stops them."
