# CPU accounting shared by the comparison scripts (sourced, not run):
# how busy the machine is, how much of that is the benchmark's own process
# trees, and a wait for other work to quiet down before a measurement.
# The caller defines log() and QUIET_WAIT.

# Busy and idle jiffies of the whole machine.
cpu_sample() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat; }
# Busy share between two samples, in percent of all cores.
cpu_busy() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		split(a, x, " "); split(b, y, " ")
		d = (y[1] - x[1]) + (y[2] - x[2])
		printf "%.0f", (d > 0 ? 100 * (y[1] - x[1]) / d : 0) }'
}
# CPU clock ticks used so far by the given processes and all their
# descendants, including children that have exited and been reaped.
tree_ticks() {
	local p
	for p in $(ps -e -o pid=,ppid= | awk -v roots="$*" '
		BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) keep[r[i]] = 1 }
		{ up[$1] = $2 }
		END {
			do {
				grew = 0
				for (p in up) if (!(p in keep) && (up[p] in keep)) { keep[p] = 1; grew = 1 }
			} while (grew)
			for (p in keep) print p
		}'); do
		cat "/proc/$p/stat" 2>/dev/null || true
	done | awk '{ sub(/^.*\) /, ""); n = split($0, f, " "); s += f[12] + f[13] + f[14] + f[15] } END { print s + 0 }'
}
# Percent of all cores that ticks t0..t1 over s seconds make.
own_cpu() {
	awk -v a="$1" -v b="$2" -v s="$3" -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" \
		'BEGIN { printf "%.0f", (s > 0 ? 100 * (b - a) / hz / s / n : 0) }'
}

# wait_quiet ROOTS...: waits up to QUIET_WAIT s until work other than the
# given process trees kept the machine under 10% busy for 3 s; sets
# OTHER_BUSY to the share last seen.
OTHER_BUSY=''
wait_quiet() {
	local until=$(($(date +%s) + QUIET_WAIT)) c k
	while :; do
		c=$(cpu_sample)
		k=$(tree_ticks "$@")
		sleep 3
		OTHER_BUSY=$(($(cpu_busy "$c" "$(cpu_sample)") - $(own_cpu "$k" "$(tree_ticks "$@")" 3)))
		((OTHER_BUSY < 0)) && OTHER_BUSY=0
		((OTHER_BUSY < 10)) && return 0
		if (($(date +%s) >= until)); then
			log "machine still ${OTHER_BUSY}% busy with other work; measuring anyway"
			return 0
		fi
		log "machine ${OTHER_BUSY}% busy with other work; waiting"
	done
}
