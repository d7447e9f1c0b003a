#!/usr/bin/env bash
# IMAP and POP3 throughput of Dovecot (Maildir, one node) versus a
# three-node PowerMail cluster (R=2) on loopback, on this machine, with the
# same cmd/imapload workloads against both in one run:
#
#   (a) mixed:  SELECT, FETCH headers of 20 messages, FETCH one whole
#               message, STORE +/-FLAGS, UID SEARCH, APPEND of 4 KiB
#   (b) fetch:  FETCH headers and whole messages on a warm mailbox of
#               $PREFILL messages
#   (c) search: UID SEARCH FROM / SUBJECT / UNSEEN / SINCE on that mailbox
#   (d) pop3:   RETR of random messages, $POP3_USERS users with
#               $POP3_PREFILL messages each, one session per user
#
# plus the prefill itself (APPEND of realistic-size messages, mean about
# 17 KiB, $PREFILL_SESSIONS sessions), which is timed too.
#
#   sudo bash cmd/imapload/compare/dovecot.sh [all|dovecot|powermail]
#
# Tunables (environment): SESSIONS (20), DURATION (30s per workload),
# PREFILL (10000), PREFILL_SESSIONS (8), POP3_USERS ($SESSIONS),
# POP3_PREFILL (500), POP3_OPS_PER_SESSION (50: RETRs between a QUIT and
# the next login), DC_IMAP_PORT (10143), DC_POP3_PORT (10110),
# DC_DIR (/tmp/dc-bench), PM_DIR (/tmp/pm-imap-bench; binaries, and the
# cluster under run/), PM_PORT_OFFSET (600: IMAP 1743-1745, POP3
# 1710-1712, admin 8600-8602), MAX_CONNS (100, see below), SEED (1),
# KEEP=1 keeps both scratch directories afterwards, WARM (1: before each
# IMAP workload, fetch every message's FETCH_HDR header fields once
# through every target, unmeasured, so that "warm" means the same on both
# systems; 0: measure from whatever the caches hold), QUIET_WAIT (180):
# seconds to wait, before each measurement, for other work on the machine
# (not the idle systems under test) to drop below 10% of the CPUs (the
# share seen is printed either way), OUT (a directory for the raw
# imapload outputs; default a temporary one, removed unless KEEP=1).
#
# Output: progress and logs on stderr; on stdout a Markdown report (the
# settings, a summary table with PowerMail/Dovecot ratios, per-command
# tables and every raw imapload table), ready to paste into a RESULTS.md.
#
# Dovecot runs as a private instance: its own dovecot.conf, base_dir and
# state_dir under $DC_DIR, listening on 127.0.0.1 only, a passwd-file
# passdb, a static userdb that maps every user to the system user
# "pfbench" and a Maildir per user under $DC_DIR/mail. Nothing under
# /etc/dovecot is read or written and no system service is started or
# stopped. The only lasting changes to the machine are the installed
# Debian packages (dovecot-imapd, dovecot-pop3d) and the system user
# "pfbench" (shared with cmd/smtpload/compare/postfix-dovecot.sh).
#
# Dovecot settings that differ from its compiled-in defaults, and why:
#   ssl = no, disable_plaintext_auth = no      plain LOGIN on loopback, as
#                                              PowerMail's --allow-insecure-auth
#   mail_max_userip_connections = $MAX_CONNS   default 10 per user and IP;
#                                              PowerMail's per-IP limit is
#                                              raised to the same number
# Everything else is the default, in particular the fsync behaviour:
# mail_fsync = optimized ("whenever necessary to avoid losing important
# data"): a message saved by APPEND is synced before the tagged OK, a flag
# change (STORE, a rename of the Maildir file) is not. Seen with strace on
# this machine: 3 sync calls per APPEND (1 fsync, 2 fdatasync), none for
# 20 STOREs. PowerMail acknowledges an APPEND or a STORE only after a raft
# majority has fsynced it (and an APPEND's body is fsynced on two nodes).
#
# Passwords: every user on both systems has the same argon2id hash with
# PowerMail's default cost (m=19456 KiB, t=2, p=1; made by `imapload
# --hash-password`, imported into PowerMail with `mailbox import`),
# checked at every login (Dovecot's default auth_cache_size = 0; PowerMail
# has no login cache). Dovecot's own ARGON2ID default (m=65536, t=3) would
# cost about five times as much per login. Dovecot checks passwd-file
# passwords in its one auth process (seen in ps: a single
# dovecot-imapload/auth busy, no auth-worker), so its logins queue behind
# each other: LOGIN p50 of several hundred ms when 10-20 sessions log in
# at once. That weighs on the POP3 workload, which logs in again every
# POP3_OPS_PER_SESSION commands; its RETR latency columns show RETR alone.
#
# Dovecot also keeps its defaults of one login process per connection, one
# imap/pop3 process per session and pop3_lock_session = no, while
# PowerMail locks a POP3 maildrop (RFC 1939); that is why the POP3
# workload gives every session its own user.
set -euo pipefail

MODE=${1:-all}
SESSIONS=${SESSIONS:-20}
DURATION=${DURATION:-30s}
PREFILL=${PREFILL:-10000}
PREFILL_SESSIONS=${PREFILL_SESSIONS:-8}
POP3_USERS=${POP3_USERS:-$SESSIONS}
POP3_PREFILL=${POP3_PREFILL:-500}
POP3_OPS_PER_SESSION=${POP3_OPS_PER_SESSION:-50}
DC_IMAP_PORT=${DC_IMAP_PORT:-10143}
DC_POP3_PORT=${DC_POP3_PORT:-10110}
DC_DIR=${DC_DIR:-/tmp/dc-bench}
PM_DIR=${PM_DIR:-/tmp/pm-imap-bench}
PM_PORT_OFFSET=${PM_PORT_OFFSET:-600}
MAX_CONNS=${MAX_CONNS:-100}
SEED=${SEED:-1}
KEEP=${KEEP:-0}
WARM=${WARM:-1}
QUIET_WAIT=${QUIET_WAIT:-180}
OUT=${OUT:-}
DOMAIN=bench.test
USER1=user@$DOMAIN
POP_PATTERN="pop%d@$DOMAIN"
PASSWORD=bench-password
MAIL_UID_NAME=pfbench
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
export PATH=$PATH:/usr/local/go/bin

case $MODE in all | dovecot | powermail) ;; *)
	echo "usage: $0 [all|dovecot|powermail]" >&2
	exit 2
	;;
esac
if [[ $(id -u) -ne 0 ]]; then
	echo "$0: run as root (installs packages, runs Dovecot)" >&2
	exit 1
fi
for d in "$DC_DIR" "$PM_DIR"; do
	case $d in /tmp/?* | /var/tmp/?* | /srv/?*) ;; *)
		echo "$0: DC_DIR and PM_DIR must be scratch paths under /tmp, /var/tmp or /srv" >&2
		exit 1
		;;
	esac
done
OWN_OUT=0
if [[ -z $OUT ]]; then
	OUT=$(mktemp -d /tmp/imapload-out.XXXXXX)
	OWN_OUT=1
fi
mkdir -p "$OUT"

log() { printf '== %s\n' "$*" >&2; }

# CPU accounting: cpu_sample, cpu_busy, tree_ticks, own_cpu, wait_quiet
# (which sets OTHER_BUSY).
. "$REPO/cmd/smtpload/compare/cpu.sh"

# -------------------------------------------------------------- install

install_packages() {
	local missing=() p own_policy=0
	for p in dovecot-core dovecot-imapd dovecot-pop3d; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if ((${#missing[@]})); then
		log "installing ${missing[*]}"
		# Keep the packages from starting the system Dovecot during
		# install; only a policy-rc.d made here is removed again.
		if [[ ! -e /usr/sbin/policy-rc.d ]]; then
			printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
			chmod 755 /usr/sbin/policy-rc.d
			own_policy=1
		fi
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
		if ((own_policy)); then rm -f /usr/sbin/policy-rc.d; fi
	fi
	if ! id "$MAIL_UID_NAME" >/dev/null 2>&1; then
		useradd --system --user-group --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin "$MAIL_UID_NAME"
	fi
}

PM_REV=''
# build_tools builds imapload and, for the PowerMail side, powermail and
# devcluster, all before any measurement, so that a broken build stops the
# script early.
build_tools() {
	mkdir -p "$PM_DIR"
	log "building into $PM_DIR"
	(cd "$REPO" && go build -o "$PM_DIR/imapload" ./cmd/imapload)
	if [[ $MODE == all || $MODE == powermail ]]; then
		PM_REV=$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
		if [[ -n $(cd "$REPO" && GIT_OPTIONAL_LOCKS=0 git status --porcelain --untracked-files=no 2>/dev/null) ]]; then PM_REV="$PM_REV-dirty"; fi
		(cd "$REPO" && go build -o "$PM_DIR/powermail" ./cmd/powermail && go build -o "$PM_DIR/devcluster" ./cmd/devcluster)
	fi
}

# imapload NAME ARGS...: runs one imapload invocation, its table into
# $OUT/NAME.txt (and on stderr), progress on stderr. Never fails the script.
imapload() {
	local name=$1
	shift
	local rc=0
	"$PM_DIR/imapload" --plain-auth-ok --seed "$SEED" --progress 10s "$@" >"$OUT/$name.txt" || rc=$?
	sed 's/^/   | /' "$OUT/$name.txt" >&2
	if ((rc != 0)); then log "$name: imapload exited with $rc"; fi
}

# workloads SYS IMAP POP3 ROOTS: prefill, then (b) (c) (d) (a) with CPU
# accounting around each; mixed runs last because it adds messages and
# changes flags.
workloads() {
	local sys=$1 imap=$2 pop3=$3 roots=$4 w c0 k0 t0 el
	log "$sys: prefill $USER1 to $PREFILL messages and $POP3_USERS POP3 users to $POP3_PREFILL each"
	imapload "$sys-prefill" --label "$sys" --imap "$imap" --user "$USER1" --password "$PASSWORD" \
		--prefill "$PREFILL" --prefill-sessions "$PREFILL_SESSIONS" --duration 0
	imapload "$sys-prefill-pop3" --label "$sys" --imap "$imap" --users "$POP_PATTERN" --users-count "$POP3_USERS" \
		--password "$PASSWORD" --prefill "$POP3_PREFILL" --prefill-sessions "$PREFILL_SESSIONS" --duration 0
	sync
	for w in fetch search pop3 mixed; do
		if [[ $WARM == 1 && $w != pop3 ]]; then
			imapload "$sys-$w-warm" --label "$sys" --mode "$w" --imap "$imap" --user "$USER1" --password "$PASSWORD" \
				--warm --duration 0
		fi
		wait_quiet "$roots"
		echo "$OTHER_BUSY" >"$OUT/$sys-$w.other"
		log "$sys: $w, $SESSIONS sessions, $DURATION"
		c0=$(cpu_sample)
		k0=$(tree_ticks "$roots")
		t0=$(date +%s.%N)
		if [[ $w == pop3 ]]; then
			imapload "$sys-$w" --label "$sys" --mode pop3 --pop3 "$pop3" --users "$POP_PATTERN" \
				--users-count "$POP3_USERS" --password "$PASSWORD" --sessions "$SESSIONS" --duration "$DURATION" \
				--pop3-ops-per-session "$POP3_OPS_PER_SESSION"
		else
			imapload "$sys-$w" --label "$sys" --mode "$w" --imap "$imap" --user "$USER1" --password "$PASSWORD" \
				--sessions "$SESSIONS" --duration "$DURATION"
		fi
		el=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
		echo "$(cpu_busy "$c0" "$(cpu_sample)") $(own_cpu "$k0" "$(tree_ticks "$roots")" "$el")" >"$OUT/$sys-$w.cpu"
	done
}

# ------------------------------------------------------------- Dovecot

DC_CONF=$DC_DIR/dovecot.conf
dc_pid() { cat "$DC_DIR/run/master.pid" 2>/dev/null || true; }

dc_stop() {
	local pid
	pid=$(dc_pid)
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		dovecot -c "$DC_CONF" stop 2>/dev/null || kill "$pid" 2>/dev/null || true
		for _ in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
	fi
}

dc_configure() {
	dc_stop
	rm -rf "$DC_DIR"
	mkdir -p "$DC_DIR/mail" "$DC_DIR/state"
	chmod 755 "$DC_DIR"
	chown "$MAIL_UID_NAME:$MAIL_UID_NAME" "$DC_DIR/mail"
	cat >"$DC_CONF" <<-EOF
		# Private benchmark instance (cmd/imapload/compare/dovecot.sh).
		protocols = imap pop3
		listen = 127.0.0.1
		base_dir = $DC_DIR/run
		state_dir = $DC_DIR/state
		instance_name = dovecot-imapload
		log_path = $DC_DIR/dovecot.log
		ssl = no
		disable_plaintext_auth = no
		mail_max_userip_connections = $MAX_CONNS
		mail_location = maildir:$DC_DIR/mail/%d/%n/Maildir
		passdb {
		  driver = passwd-file
		  args = $DC_DIR/users
		}
		userdb {
		  driver = static
		  args = uid=$MAIL_UID_NAME gid=$MAIL_UID_NAME home=$DC_DIR/mail/%d/%n
		}
		service imap-login {
		  inet_listener imap {
		    port = $DC_IMAP_PORT
		  }
		  inet_listener imaps {
		    port = 0
		  }
		}
		service pop3-login {
		  inet_listener pop3 {
		    port = $DC_POP3_PORT
		  }
		  inet_listener pop3s {
		    port = 0
		  }
		}
	EOF
	local uid
	uid=$(id -u "$MAIL_UID_NAME")
	if ((uid < 500)); then echo "first_valid_uid = $uid" >>"$DC_CONF"; fi
	# The same argon2id hash as PowerMail's mailboxes get (see HASH).
	local i
	{
		echo "$USER1:{ARGON2ID}$HASH"
		for i in $(seq "$POP3_USERS"); do echo "pop$i@$DOMAIN:{ARGON2ID}$HASH"; done
	} >"$DC_DIR/users"
	chgrp dovecot "$DC_DIR/users"
	chmod 640 "$DC_DIR/users"
}

dc_start() {
	dovecot -c "$DC_CONF"
	for _ in $(seq 50); do
		(exec 3<>"/dev/tcp/127.0.0.1/$DC_IMAP_PORT") 2>/dev/null &&
			(exec 3<>"/dev/tcp/127.0.0.1/$DC_POP3_PORT") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "$0: Dovecot is not listening on 127.0.0.1:$DC_IMAP_PORT and :$DC_POP3_PORT" >&2
	tail -20 "$DC_DIR/dovecot.log" >&2 || true
	exit 1
}

DC_VERSION=''
run_dovecot() {
	DC_VERSION=$(dovecot --version | cut -d' ' -f1)
	log "Dovecot $DC_VERSION: setting up $DC_DIR"
	dc_configure
	dc_start
	workloads dovecot "127.0.0.1:$DC_IMAP_PORT" "127.0.0.1:$DC_POP3_PORT" "$$ $(dc_pid)"
	log "Dovecot: $(find "$DC_DIR/mail/$DOMAIN/user/Maildir" -type f -path '*/cur/*' -o -type f -path '*/new/*' | wc -l) message files in $USER1's Maildir, $(du -sh "$DC_DIR/mail" | cut -f1) in all"
	dc_stop
	if grep -E -i ' (error|fatal|panic):' "$DC_DIR/dovecot.log" >&2; then log "Dovecot logged the errors above"; fi
	cp "$DC_DIR/dovecot.log" "$OUT/dovecot.log" 2>/dev/null || true
	if [[ $KEEP != 1 ]]; then rm -rf "$DC_DIR"; fi
}

# ----------------------------------------------------------- PowerMail

PM_RUN=$PM_DIR/run
PM_ADMIN=127.0.0.1:$((8000 + PM_PORT_OFFSET))
PM_IMAP=$(for i in 0 1 2; do printf '127.0.0.1:%d,' $((1143 + PM_PORT_OFFSET + i)); done)
PM_IMAP=${PM_IMAP%,}
PM_POP3=$(for i in 0 1 2; do printf '127.0.0.1:%d,' $((1110 + PM_PORT_OFFSET + i)); done)
PM_POP3=${PM_POP3%,}

pm_stop() {
	if [[ -x $PM_DIR/devcluster && -d $PM_RUN ]]; then
		"$PM_DIR/devcluster" --bin "$PM_DIR/powermail" --dir "$PM_RUN" \
			--port-offset "$PM_PORT_OFFSET" stop >/dev/null || true
	fi
	if [[ $KEEP != 1 ]]; then rm -rf "$PM_RUN"; fi
}

pm() { POWERMAIL_TOKEN=$(cat "$PM_RUN/secret") "$PM_DIR/powermail" "$@" --addr "$PM_ADMIN"; }

run_powermail() {
	KEEP=0 pm_stop
	# devcluster starts every node with --allow-insecure-auth (loopback).
	POWERMAIL_MAX_CONNS_PER_IP=$MAX_CONNS "$PM_DIR/devcluster" --bin "$PM_DIR/powermail" \
		--dir "$PM_RUN" --port-offset "$PM_PORT_OFFSET" --quiet start
	log "PowerMail: creating $DOMAIN, $USER1 and pop1..pop$POP3_USERS@$DOMAIN"
	local i roots f
	pm domain add "$DOMAIN" >/dev/null
	# CSV: the hash has commas, so it is quoted.
	{
		echo "$USER1,\"$HASH\""
		for i in $(seq "$POP3_USERS"); do echo "pop$i@$DOMAIN,\"$HASH\""; done
	} | pm mailbox import - >/dev/null
	for f in ${PM_IMAP//,/ } ${PM_POP3//,/ }; do
		for _ in $(seq 50); do
			(exec 3<>"/dev/tcp/${f%:*}/${f#*:}") 2>/dev/null && break
			sleep 0.1
		done
	done
	roots=$$
	for f in "$PM_RUN"/n*.pid; do roots+=" $(cat "$f")"; done
	log "PowerMail $PM_REV: leader $(pm cluster status | awk '/^leader:/ { print $2 }'), IMAP $PM_IMAP"
	workloads powermail "$PM_IMAP" "$PM_POP3" "$roots"
	pm cluster status >&2 || true
	for f in "$PM_RUN"/n*.log; do
		if grep -c -E -i 'level=(ERROR|WARN)' "$f" >/dev/null; then
			log "$(basename "$f"): $(grep -c -E -i 'level=ERROR' "$f" || true) ERROR and $(grep -c -E -i 'level=WARN' "$f" || true) WARN lines"
		fi
		cp "$f" "$OUT/powermail-$(basename "$f")" 2>/dev/null || true
	done
	pm_stop
}

cleanup() {
	dc_stop || true
	pm_stop || true
	if [[ $KEEP != 1 ]]; then
		rm -rf "$DC_DIR"
		if ((OWN_OUT)); then rm -rf "$OUT"; fi
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --------------------------------------------------------------- report

# row FILE CMD -> "count errors ops/s p50 p99 max", empty if absent.
row() { if [[ -f $1 ]]; then awk -v c="$2" 'NF == 7 && $1 == c { print $2, $3, $4, $5, $6, $7 }' "$1"; fi; }
col() { row "$1" "$2" | awk -v i="$3" '{ print $i }'; }
# Command names in the tables, first seen first, TOTAL last.
commands() { cat "$@" 2>/dev/null | awk 'NF == 7 && $1 ~ /^[A-Z][A-Z0-9_]*$/ && $1 != "TOTAL" && !seen[$1]++ { print $1 }' || true; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a + 0 == 0) print "-"; else printf "%.2f", b / a }'; }
or_dash() { if [[ -n $1 ]]; then printf '%s' "$1"; else printf -- -; fi; }
prefill_rate() { if [[ -f $1 ]]; then sed -n 's/.*msgs_per_s=\([0-9.]*\).*/\1/p' "$1"; fi; }
# show FILE: its words joined by /, or - if there is no such file.
show() { if [[ -f $1 ]]; then tr ' ' / <"$1" | tr -d '\n'; else printf -; fi; }

report() {
	local dcn="Dovecot ${DC_VERSION:-}" pmn="PowerMail ${PM_REV:-} (3 nodes, R=2)" w c d p label
	echo "## imapload: Dovecot vs PowerMail, $(date -u +%Y-%m-%dT%H:%MZ)"
	echo
	echo "Machine: $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB, kernel $(uname -r)."
	echo "Settings: SESSIONS=$SESSIONS DURATION=$DURATION PREFILL=$PREFILL PREFILL_SESSIONS=$PREFILL_SESSIONS"
	echo "POP3_USERS=$POP3_USERS POP3_PREFILL=$POP3_PREFILL POP3_OPS_PER_SESSION=$POP3_OPS_PER_SESSION MAX_CONNS=$MAX_CONNS SEED=$SEED; Dovecot on"
	echo "127.0.0.1:$DC_IMAP_PORT/$DC_POP3_PORT, PowerMail on IMAP $PM_IMAP, POP3 $PM_POP3 (sessions spread over the nodes)."
	echo
	echo "| workload | $dcn | $pmn | PowerMail / Dovecot |"
	echo "| --- | ---: | ---: | ---: |"
	for w in mixed fetch search pop3; do
		case $w in
		mixed) label="(a) mixed, total ops/s" c=TOTAL ;;
		fetch) label="(b) FETCH on $PREFILL messages, total ops/s" c=TOTAL ;;
		search) label="(c) UID SEARCH on $PREFILL messages, total ops/s" c=TOTAL ;;
		pop3) label="(d) POP3 RETR/s" c=RETR ;;
		esac
		d=$(col "$OUT/dovecot-$w.txt" "$c" 3)
		p=$(col "$OUT/powermail-$w.txt" "$c" 3)
		echo "| $label | $(or_dash "$d") | $(or_dash "$p") | $(ratio "$d" "$p") |"
	done
	d=$(prefill_rate "$OUT/dovecot-prefill.txt")
	p=$(prefill_rate "$OUT/powermail-prefill.txt")
	echo "| prefill APPEND msgs/s ($PREFILL_SESSIONS sessions, mean ~17 KiB) | $(or_dash "$d") | $(or_dash "$p") | $(ratio "$d" "$p") |"
	echo
	echo "CPU during each run (whole machine busy % / part used by the system under test, imapload"
	echo "and this script; 100 = all cores) and other work in the 3 s before it (% of the machine):"
	echo
	echo "| workload | Dovecot CPU / own | other before | PowerMail CPU / own | other before |"
	echo "| --- | --- | --- | --- | --- |"
	for w in mixed fetch search pop3; do
		echo "| $w | $(show "$OUT/dovecot-$w.cpu") | $(show "$OUT/dovecot-$w.other") |" \
			"$(show "$OUT/powermail-$w.cpu") | $(show "$OUT/powermail-$w.other") |"
	done
	for w in mixed fetch search pop3; do
		echo
		echo "### $w: per command (ops/s; latency p50 / p99 in ms; errors)"
		echo
		echo "| command | Dovecot ops/s | PowerMail ops/s | PM / DC | Dovecot p50 / p99 | PowerMail p50 / p99 | errors DC / PM |"
		echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
		for c in $(commands "$OUT/dovecot-$w.txt" "$OUT/powermail-$w.txt") TOTAL; do
			local dr pr
			dr=$(row "$OUT/dovecot-$w.txt" "$c" || true)
			pr=$(row "$OUT/powermail-$w.txt" "$c" || true)
			read -r _ de dops dp50 dp99 _ <<<"${dr:-- - - - - -}"
			read -r _ pe pops pp50 pp99 _ <<<"${pr:-- - - - - -}"
			echo "| $c | $dops | $pops | $(ratio "${dr:+$dops}" "${pr:+$pops}") | $dp50 / $dp99 | $pp50 / $pp99 | $de / $pe |"
		done
	done
	echo
	echo "### Raw imapload output"
	for f in "$OUT"/dovecot-*.txt "$OUT"/powermail-*.txt; do
		[[ -f $f ]] || continue
		echo
		echo "$(basename "$f" .txt):"
		echo
		sed 's/^/    /' "$f"
	done
}

# ----------------------------------------------------------------- main

install_packages
build_tools
# One argon2id hash, at PowerMail's default cost (m=19456 KiB, t=2, p=1),
# for every user on both systems.
HASH=$("$PM_DIR/imapload" --hash-password "$PASSWORD")
log "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB, kernel $(uname -r); raw outputs in $OUT"
if [[ $MODE == all || $MODE == dovecot ]]; then run_dovecot; fi
if [[ $MODE == all || $MODE == powermail ]]; then run_powermail; fi
report
