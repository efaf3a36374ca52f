#!/usr/bin/env bash
# tests/spin/run.sh [--full] — model-check the readiness hand-shake
# (tests/spin/readiness.pml; what is modelled and the results: README.md).
#
#   safety   assertions (incl. "at most one token byte queued") and invalid
#            end states: a state where nobody can move before the program
#            finished is a lost wake-up (or tund blocked)
#   liveness the LTL claims of the model, with weak fairness (pan -a -f)
#   known    a documented product bug: reported as KNOWN, and fails the run
#            only with ENOSHIM_KNOWN_BUGS=1; if one stops reproducing, the
#            run fails (the model or README.md needs updating)
#   mutant   a deliberate bug put into the model, which the named check must
#            catch; the run fails if it is not caught (the checks can fail)
#
# Checks run in parallel (JOBS, default: the number of CPUs).  Exit status:
# 0 when everything is as expected, 1 otherwise.  A run with anything but
# PASS keeps its directory (trail files) and prints its path; replay a trail
# there with: spin -t -p -g $(cat flags) m.pml
set -u
here=$(cd "$(dirname "$0")" && pwd)
model=$here/readiness.pml
full=0
[ "${1:-}" = "--full" ] && full=1
known_bugs=0
case "${ENOSHIM_KNOWN_BUGS:-0}" in ""|0) ;; *) known_bugs=1 ;; esac
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}

for t in spin gcc; do
  command -v $t >/dev/null || { echo "run.sh: $t not found (apt-get install spin gcc)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/enoshim-spin.XXXXXX)
t_start=$(date +%s)

# build DIR KIND OPT FLAGS...: spin -a and gcc in a directory of its own
build() {
  local dir=$1 kind=$2 opt=$3; shift 3
  mkdir -p "$dir"
  cp "$model" "$dir/m.pml"
  local ccdef
  if [ "$kind" = safety ]; then
    set -- -DNO_LTL "$@"; ccdef="-DSAFETY"
  else
    ccdef="-DNOREDUCE"      # the claims use remote references
  fi
  case " $* " in *" -DCOLLAPSE "*) ccdef="$ccdef -DCOLLAPSE" ;; esac   # state compression
  echo "$*" >"$dir/flags"
  (cd "$dir" && spin "$@" -a m.pml >spin.log 2>&1 &&
     gcc $opt -w $ccdef -DMEMLIM=4000 -o pan pan.c >>spin.log 2>&1) || {
    echo "FAIL   $(basename "$dir"): build failed"; sed 's/^/       | /' "$dir/spin.log" | tail -20; return 1; }
}

# report NAME EXPECT LOGFILE DIR: one line, PASS / KNOWN / FAIL first
report() {
  local name=$1 expect=$2 log=$3 dir=$4
  local errs states secs what verdict incomplete=0
  errs=$(grep -Eo 'errors: [0-9]+' "$log" | awk '{print $2}' | head -1)
  [ -n "$errs" ] || errs=-1
  states=$(grep -Eo '^ *[0-9.e+]+ states, stored' "$log" | awk '{print $1}' | head -1)
  secs=$(grep -Eo 'elapsed time [0-9.e+]+' "$log" | awk '{print $3}' | head -1)
  what=$(grep -E '^pan:1:' "$log" | head -1)
  grep -q 'max search depth too small\|out of memory\|reached -DMEMLIM' "$log" && incomplete=1
  case "$expect" in
    pass)
      if [ "$errs" = 0 ] && [ $incomplete -eq 0 ]; then verdict=PASS
      elif [ "$errs" = 0 ]; then verdict=FAIL what="search incomplete (depth or memory)"
      else verdict=FAIL; fi ;;
    mutant)
      if [ "$errs" -gt 0 ]; then verdict=PASS what="caught: $what"
      else verdict=FAIL what="mutant NOT caught"; fi ;;
    known)
      if [ "$errs" -gt 0 ]; then
        if [ $known_bugs -eq 1 ]; then verdict=FAIL; else verdict=KNOWN; fi
      else verdict=FAIL what="known bug no longer reproduced: update readiness.pml / README.md"; fi ;;
  esac
  printf '%-6s %-44s %10s states %7ss  %s\n' "$verdict" "$name" "${states:-?}" "${secs:-?}" "$what"
  [ "$verdict" = PASS ] || echo "       in $dir"
}

# safety NAME EXPECT OPT FLAGS...
safety() {
  local name=$1 expect=$2 opt=$3; shift 3
  local dir=$work/$name
  build "$dir" safety "$opt" "$@" || return
  (cd "$dir" && ./pan -m1000000 -n >pan.log 2>&1)
  report "$name" "$expect" "$dir/pan.log" "$dir"
}

# live NAME EXPECT OPT CLAIM,CLAIM,... FLAGS...
live() {
  local name=$1 expect=$2 opt=$3 claims=$4; shift 4
  local dir=$work/$name
  build "$dir" live "$opt" "$@" || return
  for c in ${claims//,/ }; do
    (cd "$dir" && ./pan -a -f -m1000000 -n -N "$c" >"pan-$c.log" 2>&1)
    [ -f "$dir/m.pml.trail" ] && mv "$dir/m.pml.trail" "$dir/m.pml.trail-$c"
    report "$name [$c]" "$expect" "$dir/pan-$c.log" "$dir"
  done
}

# The checks, in the order they are printed.  Heavy ones first (they start
# first), with -O2; light ones with -O0 (pan.c compiles in a second).
n=0
check() { n=$((n + 1)); printf '%s\n' "$*" >"$work/job.$(printf %03d $n)"; }

RX="-DNRX=2 -DNTX=0"                              # rx ring of 1 byte, window 1: WANT_RXSPACE
TX="-DNRX=0 -DNTX=2 -DTXN=1 -DINFL=1"             # tx ring of 1 byte: filler and waits
ALL="-DNRX=2 -DNTX=2 -DTXN=1 -DINFL=1"            # both directions through one pair

check "@== safety (sequentially consistent memory)"
check safety all-directions          pass -O2 $ALL
check safety rx-3-bytes              pass -O2 -DNRX=3 -DNTX=0
check safety tx-hysteresis           pass -O2 -DNRX=0 -DNTX=3 -DTXN=2 -DINFL=1 -DLOW=2
check safety pair-doorbell           pass -O2 -DPAIR_DOORBELL -DNO_CONNECT $ALL
if [ $full -eq 1 ]; then
  check safety all-directions-pcap1  pass -O2 $ALL -DPCAP=1
  check safety all-3-bytes-noconnect pass -O2 -DCOLLAPSE -DNO_CONNECT -DNRX=3 -DNTX=3 -DTXN=2 -DINFL=1
fi
check "@== event-driven readers (poll, then read; non-blocking; or blocking with some polls)"
check safety poller-rx               pass -O2 -DPOLLER -DNRX=3 -DNTX=0
check safety poller-all              pass -O2 -DPOLLER $ALL
check safety poller-nofin            pass -O2 -DPOLLER -DNOFIN -DNRX=3 -DNTX=0
check safety mixed-nofin             pass -O2 -DMIXED -DNOFIN -DNRX=3 -DNTX=0
check "@== x86-TSO store buffer on the reader's rx_cons store"
check safety tso-rx                  pass  -O2 -DTSO -DNRX=3 -DNTX=0
if [ $full -eq 1 ]; then
  check safety tso-all               pass  -O2 -DTSO -DNO_CONNECT $ALL
fi
check "@== liveness (weak fairness)"
check live rx      pass -O2 done,rx_ready,rx_space,one_token,tund_nonblocking -DNO_CONNECT $RX
check live tx      pass -O2 done,tx_writable,tx_taken,tund_nonblocking        -DNO_CONNECT $TX
check live connect pass -O2 done,tx_writable,tund_nonblocking     -DNRX=0 -DNTX=1 -DTXN=1 -DINFL=1
check live drain   pass -O0 drain_ends $TX
if [ $full -eq 1 ]; then
  check live tx-connect pass -O2 done,tx_writable,tx_taken,tund_nonblocking $TX
  check live rx-connect pass -O2 done,rx_ready,rx_space,one_token           $RX
fi
check "@== mutants (each must be caught)"
check safety mut-settle-no-recheck   mutant -O0 -DMUT_NO_RECHECK -DPOLLER -DNOFIN $RX
check safety mut-drain-no-pending    mutant -O0 -DMUT_NO_PENDING -DPAIR_DOORBELL $ALL
check safety mut-txpump-one-round    mutant -O0 -DMUT_TX_ONE_ROUND $TX
check safety mut-sent-no-writable    mutant -O0 -DMUT_SENT_NO_WRITABLE $TX
check safety mut-notify-no-cas       mutant -O0 -DMUT_NOTIFY_NO_CAS $RX
check safety mut-blocking-drain      mutant -O0 -DMUT_BLOCKING_DRAIN $TX
check live mut-unbounded-drain        mutant -O0 drain_ends -DMUT_UNBOUNDED_DRAIN $TX
check safety mut-doorbell-dropped    mutant -O0 -DMUT_DOORBELL_DROP $ALL
check safety mut-wait-takes-grant    mutant -O0 -DMUT_WAIT_TAKES_GRANT -DMIXED -DNOFIN $RX
check safety mut-declared-after      mutant -O0 -DMUT_DECL_AFTER $TX
# io_recv() before commit 145e38e: no fence between the rx_cons store and the wants load
check safety mut-tso-no-rx-fence     mutant -O0 -DTSO -DNO_RX_FENCE $RX
check live mut-live-no-recheck       mutant -O0 done -DMUT_NO_RECHECK -DPOLLER -DNOFIN -DNO_CONNECT $RX
check live mut-live-no-cas           mutant -O0 one_token     -DMUT_NOTIFY_NO_CAS -DNO_CONNECT $RX
check live mut-live-no-pending       mutant -O0 done          -DMUT_NO_PENDING -DPAIR_DOORBELL -DNO_CONNECT $ALL
check live mut-live-sent             mutant -O0 tx_writable   -DMUT_SENT_NO_WRITABLE -DNO_CONNECT $TX
check live mut-live-one-round        mutant -O0 tx_taken      -DMUT_TX_ONE_ROUND $TX
check live mut-live-blocking-drain   mutant -O0 tund_nonblocking -DMUT_BLOCKING_DRAIN -DNO_CONNECT $TX

# run them, at most $jobs at a time
running=0
for f in "$work"/job.*; do
  read -r -a args <"$f"
  case "${args[0]}" in @*) echo "${args[*]#@}" >"$f.out"; continue ;; esac
  if [ $running -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
  ("${args[@]}" >"$f.out" 2>&1) &
  running=$((running + 1))
done
wait

cat "$work"/job.*.out
n_ok=$(cat "$work"/job.*.out | grep -c '^PASS')
n_known=$(cat "$work"/job.*.out | grep -c '^KNOWN')
n_bad=$(cat "$work"/job.*.out | grep -c '^FAIL')
t=$(( $(date +%s) - t_start ))
echo "== $n_ok as expected, $n_known known product bugs, $n_bad failed (${t}s)"
if [ "$n_known" -gt 0 ] && [ $known_bugs -eq 0 ]; then
  echo "   KNOWN: see tests/spin/README.md; ENOSHIM_KNOWN_BUGS=1 makes them fail the run"
fi
if [ "$n_bad" -eq 0 ] && [ "$n_known" -eq 0 ]; then
  rm -rf "$work"
else
  echo "   work directory kept: $work"
fi
[ "$n_bad" -eq 0 ] || exit 1
exit 0
