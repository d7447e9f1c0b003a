#!/usr/bin/env bash
# Delivery throughput, end to end, of Postfix + Dovecot LMTP (Maildir) versus a
# three-node PowerMail cluster (R=2) on loopback, on this machine, with
# Postfix's smtp-source as the load generator for both.
#
#   sudo bash cmd/smtpload/compare/postfix-dovecot.sh [all|postfix|powermail]
#
# Tunables (environment): N (messages, default 10000), SESSIONS (20),
# SIZE (payload bytes, 4096), PF_PORT (10025), PF_DIR (/tmp/pf-bench),
# PM_DIR (/tmp/pm-bench), PM_PORT_OFFSET (500), PM_MAX_CONNS_PER_IP (50),
# KEEP=1 keeps the Postfix/Dovecot scratch directory afterwards,
# QUIET_WAIT (180): seconds to wait, before each measurement, for other
# work on the machine (not the idle system under test) to drop below 10%
# of the CPUs (the share seen just before each measurement is printed
# either way).
#
# Postfix and Dovecot run as private instances: their own main.cf/master.cf
# and dovecot.conf under $PF_DIR, their own queue, LMTP socket and Maildir.
# Nothing under /etc/postfix or /etc/dovecot is read or written, and no
# system service is started or stopped. The only lasting changes to the
# machine are the installed Debian packages and a system user "pfbench"
# that owns the Maildir.
#
# Postfix+Dovecot is timed from the start of smtp-source until the N-th
# message file is in Maildir/new (Postfix queues first and delivers later).
# PowerMail answers 250 only once a message is durable on W=R=2 nodes and
# committed through raft, so smtp-source's own run time is its end-to-end
# time; the mailbox's message count is checked afterwards.
set -euo pipefail

MODE=${1:-all}
N=${N:-10000}
SESSIONS=${SESSIONS:-20}
SIZE=${SIZE:-4096}
PF_PORT=${PF_PORT:-10025}
PF_DIR=${PF_DIR:-/tmp/pf-bench}
PM_DIR=${PM_DIR:-/tmp/pm-bench}
PM_PORT_OFFSET=${PM_PORT_OFFSET:-500}
PM_MAX_CONNS_PER_IP=${PM_MAX_CONNS_PER_IP:-50}
KEEP=${KEEP:-0}
QUIET_WAIT=${QUIET_WAIT:-180}
PF_DOMAIN=bench.test
PF_USER=user
MAIL_UID_NAME=pfbench
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)

case $MODE in all | postfix | powermail) ;; *)
	echo "usage: $0 [all|postfix|powermail]" >&2
	exit 2
	;;
esac
if [[ $(id -u) -ne 0 ]]; then
	echo "$0: run as root (installs packages, runs Postfix and Dovecot)" >&2
	exit 1
fi
case $PF_DIR in /tmp/?* | /var/tmp/?* | /srv/?*) ;; *)
	echo "$0: PF_DIR must be a scratch path under /tmp, /var/tmp or /srv" >&2
	exit 1
	;;
esac

log() { printf '== %s\n' "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
# CPU accounting: cpu_sample, cpu_busy, tree_ticks, own_cpu, wait_quiet
# (which sets OTHER_BUSY).
. "$REPO/cmd/smtpload/compare/cpu.sh"

PF_ETC=$PF_DIR/etc
PF_SPOOL=$PF_DIR/spool
DC_CONF=$PF_DIR/dovecot/dovecot.conf
MAILDIR_NEW=$PF_DIR/mail/$PF_DOMAIN/$PF_USER/Maildir/new
PM_RUN=$PM_DIR/run
PM_ADMIN=127.0.0.1:$((8000 + PM_PORT_OFFSET))
PM_SMTP=127.0.0.1:$((2525 + PM_PORT_OFFSET))

# ---------------------------------------------------------------- install

install_packages() {
	local missing=()
	for p in postfix dovecot-core dovecot-lmtpd; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if ((${#missing[@]})); then
		log "installing ${missing[*]}"
		# "No configuration": the package writes no /etc/postfix/main.cf and
		# starts no system Postfix; this script runs its own instance.
		echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
		# Keep the packages' own services from starting during install
		# (Dovecot's would listen with the system config). Only a
		# policy-rc.d that this script created is removed again.
		local own_policy=0
		if [[ ! -e /usr/sbin/policy-rc.d ]]; then
			printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
			chmod 755 /usr/sbin/policy-rc.d
			own_policy=1
		fi
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
		if ((own_policy)); then rm -f /usr/sbin/policy-rc.d; fi
	fi
	# smtp-source ships in Debian's postfix package (see dpkg -L postfix).
	if ! command -v smtp-source >/dev/null; then
		echo "$0: smtp-source not found after installing postfix; dpkg -L postfix says:" >&2
		dpkg -L postfix | grep -E 'smtp-(source|sink)' >&2 || true
		exit 1
	fi
	command -v curl >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null
	if ! id "$MAIL_UID_NAME" >/dev/null 2>&1; then
		useradd --system --user-group --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin "$MAIL_UID_NAME"
	fi
}

# ---------------------------------------------------------- Postfix+Dovecot

pf_running() { [[ -f $PF_ETC/main.cf ]] && postfix -c "$PF_ETC" status >/dev/null 2>&1; }
dc_pid() { cat "$PF_DIR/dovecot/run/master.pid" 2>/dev/null || true; }

pf_stop() {
	if pf_running; then
		postfix -c "$PF_ETC" stop >/dev/null 2>&1 || true
	fi
	local pid
	pid=''
	if [[ -f $PF_SPOOL/pid/master.pid ]]; then pid=$(tr -d ' ' <"$PF_SPOOL/pid/master.pid"); fi
	if [[ -n $pid ]]; then
		for _ in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
	fi
	pid=$(dc_pid)
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		dovecot -c "$DC_CONF" stop 2>/dev/null || kill "$pid" 2>/dev/null || true
		for _ in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
	fi
}

pf_configure() {
	pf_stop
	rm -rf "$PF_DIR"
	mkdir -p "$PF_ETC" "$PF_SPOOL" "$PF_DIR/data" "$PF_DIR/dovecot" "$PF_DIR/mail"
	chmod 755 "$PF_DIR"
	chown postfix "$PF_DIR/data"
	chown "$MAIL_UID_NAME:$MAIL_UID_NAME" "$PF_DIR/mail"

	# master.cf: Debian's default, with the smtpd listener moved from
	# port 25 to 127.0.0.1:$PF_PORT. Services stay chrooted as in Debian.
	sed "s/^smtp      inet  n       -       y       -       -       smtpd\$/127.0.0.1:$PF_PORT inet n - y - - smtpd/" \
		/usr/share/postfix/master.cf.dist >"$PF_ETC/master.cf"
	grep -q "^127.0.0.1:$PF_PORT inet" "$PF_ETC/master.cf" || {
		echo "$0: could not move smtpd to port $PF_PORT in master.cf" >&2
		exit 1
	}

	# main.cf: Debian's new-install defaults (main.cf.debian), then only
	# what a private instance and virtual delivery over LMTP need.
	{
		cat /usr/share/postfix/main.cf.debian
		cat <<-EOF

			# --- benchmark instance (postfix-dovecot.sh) ---
			queue_directory = $PF_SPOOL
			data_directory = $PF_DIR/data
			myhostname = bench-mx.localdomain
			mydestination = localhost
			inet_interfaces = 127.0.0.1
			inet_protocols = ipv4
			mynetworks = 127.0.0.0/8
			smtpd_client_restrictions = permit_mynetworks
			alias_maps =
			alias_database =
			# No DNS anywhere: the only next hop is a UNIX socket.
			smtp_host_lookup = native
			lmtp_host_lookup = native
			virtual_mailbox_domains = $PF_DOMAIN
			virtual_mailbox_maps = texthash:$PF_ETC/vmailbox
			virtual_transport = lmtp:unix:private/dovecot-lmtp
			# No syslog daemon is assumed: Postfix's own log file instead.
			maillog_file_prefixes = $PF_DIR
			maillog_file = $PF_DIR/maillog
		EOF
	} >"$PF_ETC/main.cf"
	echo "$PF_USER@$PF_DOMAIN OK" >"$PF_ETC/vmailbox"

	# Dovecot: compiled-in defaults (mail_fsync = optimized, so every
	# delivery is fsynced) plus an LMTP-only service, a static user and
	# Maildir. The LMTP socket lives in Postfix's queue directory, which is
	# where the chrooted lmtp client looks for private/dovecot-lmtp.
	cat >"$DC_CONF" <<-EOF
		protocols = lmtp
		base_dir = $PF_DIR/dovecot/run
		log_path = $PF_DIR/dovecot/dovecot.log
		ssl = no
		mail_location = maildir:$PF_DIR/mail/%d/%n/Maildir
		passdb {
		  driver = static
		  args = nopassword=y
		}
		userdb {
		  driver = static
		  args = uid=$MAIL_UID_NAME gid=$MAIL_UID_NAME home=$PF_DIR/mail/%d/%n
		}
		service lmtp {
		  unix_listener $PF_SPOOL/private/dovecot-lmtp {
		    user = postfix
		    group = postfix
		    mode = 0600
		  }
		}
	EOF
	local uid
	uid=$(id -u "$MAIL_UID_NAME")
	if ((uid < 500)); then echo "first_valid_uid = $uid" >>"$DC_CONF"; fi
}

pf_start() {
	# Creates the queue directories with Debian's owners and modes.
	postfix -c "$PF_ETC" check
	# What Debian runs before every start: copy etc files and NSS
	# libraries into the chroot (the queue directory).
	MAIL_CONFIG=$PF_ETC sh /usr/lib/postfix/configure-instance.sh -
	dovecot -c "$DC_CONF"
	for _ in $(seq 50); do
		[[ -S $PF_SPOOL/private/dovecot-lmtp ]] && break
		sleep 0.1
	done
	[[ -S $PF_SPOOL/private/dovecot-lmtp ]] || {
		echo "$0: Dovecot LMTP socket did not appear" >&2
		cat "$PF_DIR/dovecot/dovecot.log" >&2 || true
		exit 1
	}
	postfix -c "$PF_ETC" start
	for _ in $(seq 50); do
		(exec 3<>"/dev/tcp/127.0.0.1/$PF_PORT") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "$0: Postfix is not listening on 127.0.0.1:$PF_PORT" >&2
	tail -20 "$PF_DIR/maillog" >&2 || true
	exit 1
}

maildir_count() {
	if [[ -d $MAILDIR_NEW ]]; then
		find "$MAILDIR_NEW" -maxdepth 1 -type f -printf . | wc -c
	else
		echo 0
	fi
}

PF_ACCEPT_S='' PF_E2E_S='' PF_CPU='' PF_BG='' PF_OWN=''
run_postfix() {
	log "Postfix $(postconf -h mail_version 2>/dev/null || postconf -d -h mail_version) + Dovecot $(dovecot --version | cut -d' ' -f1): setting up $PF_DIR"
	pf_configure
	pf_start
	local c0 t0 t1 t2 got last_got last_change roots k0
	roots="$$ $(tr -d ' ' <"$PF_SPOOL/pid/master.pid") $(dc_pid)"
	sync
	wait_quiet "$roots"
	PF_BG=$OTHER_BUSY
	log "Postfix+Dovecot: smtp-source -s $SESSIONS -l $SIZE -m $N -> 127.0.0.1:$PF_PORT"
	c0=$(cpu_sample)
	k0=$(tree_ticks "$roots")
	t0=$(now)
	smtp-source -s "$SESSIONS" -l "$SIZE" -m "$N" -f from@x -t "$PF_USER@$PF_DOMAIN" "127.0.0.1:$PF_PORT"
	t1=$(now)
	last_got=-1
	last_change=$t1
	while :; do
		got=$(maildir_count)
		((got >= N)) && break
		if ((got != last_got)); then
			last_got=$got
			last_change=$(now)
		elif awk -v a="$last_change" -v b="$(now)" 'BEGIN { exit !(b - a > 60) }'; then
			echo "$0: Postfix+Dovecot: stuck at $got of $N deliveries for 60 s" >&2
			tail -20 "$PF_DIR/maillog" >&2 || true
			exit 1
		fi
		# Counting a directory of thousands of files costs a few ms of CPU
		# that Postfix and Dovecot would otherwise have: poll seldom while
		# far from the end, often near it.
		if ((N - got > 500)); then
			sleep 1
		elif ((N - got > 50)); then
			sleep 0.2
		else
			sleep 0.05
		fi
	done
	t2=$(now)
	PF_CPU=$(cpu_busy "$c0" "$(cpu_sample)")
	PF_ACCEPT_S=$(elapsed "$t0" "$t1")
	PF_E2E_S=$(elapsed "$t0" "$t2")
	PF_OWN=$(own_cpu "$k0" "$(tree_ticks "$roots")" "$PF_E2E_S")
	local sent deferred
	sent=$(grep -c 'status=sent' "$PF_DIR/maillog" || true)
	deferred=$(grep -c 'status=deferred' "$PF_DIR/maillog" || true)
	log "Postfix+Dovecot: accepted in ${PF_ACCEPT_S} s, all $got in Maildir after ${PF_E2E_S} s (log: $sent sent, $deferred deferred); CPU ${PF_CPU}% of the machine, ${PF_OWN}% by Postfix, Dovecot, smtp-source and this script"
	pf_stop
	if [[ $KEEP != 1 ]]; then rm -rf "$PF_DIR"; fi
}

# ---------------------------------------------------------------- PowerMail

pm_stop() {
	if [[ -x $PM_DIR/devcluster && -d $PM_RUN ]]; then
		"$PM_DIR/devcluster" --bin "$PM_DIR/powermail" --dir "$PM_RUN" \
			--port-offset "$PM_PORT_OFFSET" stop >/dev/null || true
	fi
	rm -rf "$PM_RUN"
}

PM_E2E_S='' PM_COUNT='' PM_CPU='' PM_BG='' PM_OWN='' PM_LEADER='' PM_REV=''
run_powermail() {
	log "PowerMail: building into $PM_DIR"
	mkdir -p "$PM_DIR"
	pm_stop
	(cd "$REPO" && go build -o "$PM_DIR/powermail" ./cmd/powermail && go build -o "$PM_DIR/devcluster" ./cmd/devcluster)
	PM_REV=$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
	if [[ -n $(cd "$REPO" && GIT_OPTIONAL_LOCKS=0 git status --porcelain --untracked-files=no 2>/dev/null) ]]; then PM_REV="$PM_REV-dirty"; fi
	# The per-IP connection limit (default 20) is raised to Postfix's own
	# default (smtpd_client_connection_count_limit = 50): smtp-source opens
	# a new connection for every message, and near the limit (19 and 20
	# sessions here) a new connection can arrive before the server has
	# released the slot of the one just closed; PowerMail answers it with
	# 421, which smtp-source treats as fatal.
	POWERMAIL_MAX_CONNS_PER_IP=$PM_MAX_CONNS_PER_IP "$PM_DIR/devcluster" --bin "$PM_DIR/powermail" \
		--dir "$PM_RUN" --port-offset "$PM_PORT_OFFSET" --quiet start
	local secret
	secret=$(cat "$PM_RUN/secret")
	# cluster status exits 1 when something is unhealthy; the leader's
	# name is all that is read here (the health is printed after the run).
	PM_LEADER=$({ POWERMAIL_TOKEN=$secret "$PM_DIR/powermail" cluster status --addr "$PM_ADMIN" || true; } | awk '/^leader:/ { print $2 }')
	local c0 t0 t1 roots k0 f
	roots=$$
	for f in "$PM_RUN"/n*.pid; do roots+=" $(cat "$f")"; done
	sync
	wait_quiet "$roots"
	PM_BG=$OTHER_BUSY
	log "PowerMail (leader $PM_LEADER): smtp-source -s $SESSIONS -l $SIZE -m $N -> $PM_SMTP (node n1 only)"
	c0=$(cpu_sample)
	k0=$(tree_ticks "$roots")
	t0=$(now)
	smtp-source -s "$SESSIONS" -l "$SIZE" -m "$N" -f from@x -t demo@example.com "$PM_SMTP"
	t1=$(now)
	PM_CPU=$(cpu_busy "$c0" "$(cpu_sample)")
	PM_E2E_S=$(elapsed "$t0" "$t1")
	PM_OWN=$(own_cpu "$k0" "$(tree_ticks "$roots")" "$PM_E2E_S")
	PM_COUNT=$(curl -s -H "Authorization: Bearer $secret" "http://$PM_ADMIN/v1/mailboxes/demo@example.com" |
		sed -n 's/.*"messages":\([0-9]*\).*/\1/p')
	log "PowerMail: $N acknowledged in ${PM_E2E_S} s; mailbox holds ${PM_COUNT:-?} messages; CPU ${PM_CPU}% of the machine, ${PM_OWN}% by the 3 nodes, smtp-source and this script"
	POWERMAIL_TOKEN=$secret "$PM_DIR/powermail" cluster status --addr "$PM_ADMIN" >&2 || true
	pm_stop
	if [[ $PM_COUNT != "$N" ]]; then
		echo "$0: PowerMail mailbox holds ${PM_COUNT:-?} messages, expected $N" >&2
		exit 1
	fi
}

cleanup() {
	pf_stop || true
	pm_stop || true
}
trap cleanup EXIT

# -------------------------------------------------------------------- main

install_packages
log "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB, kernel $(uname -r)"
if [[ $MODE == all || $MODE == postfix ]]; then run_postfix; fi
if [[ $MODE == all || $MODE == powermail ]]; then run_powermail; fi

echo
echo "smtp-source -s $SESSIONS -l $SIZE -m $N, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, kernel $(uname -r)"
row() { printf '%-40s %9s %9s %8s %6s %6s %7s\n' "$@"; }
row system "accept s" "e2e s" "deliv/s" "CPU %" "own %" "other-b"
if [[ -n $PF_E2E_S ]]; then
	row "Postfix $(postconf -d -h mail_version) + Dovecot $(dovecot --version | cut -d' ' -f1)" \
		"$PF_ACCEPT_S" "$PF_E2E_S" "$(rate "$N" "$PF_E2E_S")" "$PF_CPU" "$PF_OWN" "$PF_BG"
fi
if [[ -n $PM_E2E_S ]]; then
	row "PowerMail $PM_REV, 3 nodes R=2" \
		"$PM_E2E_S" "$PM_E2E_S" "$(rate "$N" "$PM_E2E_S")" "$PM_CPU" "$PM_OWN" "$PM_BG"
fi
echo "accept s: smtp-source run time; e2e s: until all N are delivered (PowerMail: the same);"
echo "CPU %: whole machine busy during the run (100 = both cores); own %: the part used by"
echo "the system under test, smtp-source and this script; other-b: % of the machine busy"
echo "with other work in the 3 s before the run (the idle system under test excluded)."
if [[ -n $PF_E2E_S ]]; then echo "Postfix acceptance rate (smtp-source only): $(rate "$N" "$PF_ACCEPT_S") msgs/s"; fi
if [[ -n $PF_E2E_S && -n $PM_E2E_S ]]; then
	awk -v a="$PF_E2E_S" -v b="$PM_E2E_S" 'BEGIN { printf "PowerMail / Postfix+Dovecot, end-to-end deliveries/s: %.2f\n", a / b }'
fi
