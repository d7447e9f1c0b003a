#!/usr/bin/env bash
# A/B of two powermail binaries on one IMAP workload: one three-node
# cluster (devcluster, port offset 700) is prefilled once with
# $PREFILL messages, then each round starts the same data with binary A,
# then B, runs `imapload --warm --mode MODE` for DURATION with $SESSIONS
# sessions, prints the TOTAL line and stops the cluster. Interleaved
# rounds keep drift on a shared machine from looking like a difference.
#
#   bash cmd/imapload/compare/ab.sh fetch 3 15s bin/powermail-old bin/powermail
#
# Environment: PREFILL (10000), SESSIONS (20), DIR (/tmp/imap-ab: the
# cluster, reused by later calls; delete it to prefill again).
set -euo pipefail
MODE=$1 ROUNDS=$2 DURATION=$3 A=$4 B=$5
PREFILL=${PREFILL:-10000}
SESSIONS=${SESSIONS:-20}
DIR=${DIR:-/tmp/imap-ab}
OFF=700
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
cd "$REPO"
go build -o bin/devcluster ./cmd/devcluster
go build -o bin/imapload ./cmd/imapload
ADMIN=127.0.0.1:$((8000 + OFF))
IMAP=127.0.0.1:$((1143 + OFF)),127.0.0.1:$((1144 + OFF)),127.0.0.1:$((1145 + OFF))
start() { bin/devcluster --bin "$1" --dir "$DIR" --port-offset $OFF --quiet start >/dev/null; sleep 2; }
stop() { bin/devcluster --dir "$DIR" --port-offset $OFF stop >/dev/null; }
load() { bin/imapload --plain-auth-ok --imap "$IMAP" --user user@bench.test --password pw "$@"; }
if [[ ! -d $DIR ]]; then
	start "$A"
	pm() { POWERMAIL_TOKEN=$(cat "$DIR/secret") "$A" "$@" --addr "$ADMIN"; }
	pm domain add bench.test >/dev/null
	echo "user@bench.test,\"$(bin/imapload --hash-password pw)\"" | pm mailbox import - >/dev/null
	load --seed 1 --prefill "$PREFILL" --prefill-sessions 8 --duration 0 2>&1 | tail -1
	stop
fi
for r in $(seq "$ROUNDS"); do
	for bin in "$A" "$B"; do
		start "$bin"
		echo "round $r $bin: $(load --seed "$r" --mode "$MODE" --sessions "$SESSIONS" --duration "$DURATION" --warm 2>/dev/null | grep TOTAL)"
		stop
	done
done
