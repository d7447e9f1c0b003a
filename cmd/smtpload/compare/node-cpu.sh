#!/usr/bin/env bash
# Node CPU per delivered message, for A/B comparisons of two builds.
#
#   bash cmd/smtpload/compare/node-cpu.sh DIR [DIR...]
#
# Each DIR holds a `powermail` and a `devcluster` binary (go build -o
# DIR/powermail ./cmd/powermail; likewise ./cmd/devcluster). For each
# round (ROUNDS, default 2) and each DIR in turn it starts a three-node
# devcluster (R=2), sends N (10000) messages of SIZE (4096) bytes from
# SESSIONS (20) smtp-source sessions to node nTARGET (1, the first
# leader; 2 for a follower), and prints the CPU the
# three node processes used per message (user + system, from /proc) and
# the rate. CPU per message is the figure to compare when the machine is
# shared: other work slows the rate but hardly changes what each message
# costs the nodes. smtp-source comes with Debian's postfix package
# (postfix-dovecot.sh installs it).
set -euo pipefail

N=${N:-10000}
SESSIONS=${SESSIONS:-20}
SIZE=${SIZE:-4096}
ROUNDS=${ROUNDS:-2}
TARGET=${TARGET:-1}
OFFSET=${PM_PORT_OFFSET:-500}
RUN=${RUN:-/tmp/pm-node-cpu}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=cmd/smtpload/compare/cpu.sh
source "$HERE/cpu.sh"

if [[ $# -eq 0 ]]; then
	echo "usage: $0 DIR [DIR...]" >&2
	exit 2
fi
command -v smtp-source >/dev/null || {
	echo "$0: smtp-source not found (apt-get install postfix)" >&2
	exit 1
}

measure() {
	local bin=$1 roots k0 k1 t0 t1 f
	rm -rf "$RUN"
	POWERMAIL_MAX_CONNS_PER_IP=50 "$bin/devcluster" --bin "$bin/powermail" --dir "$RUN" \
		--port-offset "$OFFSET" --quiet start
	sleep 15 # past start-up work: elections, the first repair scan
	roots=''
	for f in "$RUN"/n*.pid; do roots+=" $(cat "$f")"; done
	k0=$(tree_ticks "$roots")
	t0=$(date +%s.%N)
	smtp-source -s "$SESSIONS" -l "$SIZE" -m "$N" -f from@x -t demo@example.com "127.0.0.1:$((2525 + OFFSET + TARGET - 1))"
	t1=$(date +%s.%N)
	k1=$(tree_ticks "$roots")
	"$bin/devcluster" --bin "$bin/powermail" --dir "$RUN" --port-offset "$OFFSET" stop >/dev/null
	awk -v k="$((k1 - k0))" -v hz="$(getconf CLK_TCK)" -v n="$N" -v s="$t0" -v e="$t1" -v b="$bin" \
		'BEGIN { printf "%-28s %6.3f ms node CPU per message  %6.0f msgs/s\n", b, 1000 * k / hz / n, n / (e - s) }'
}

for ((r = 1; r <= ROUNDS; r++)); do
	for d in "$@"; do measure "$d"; done
done
rm -rf "$RUN"
