#!/usr/bin/env bash
# Two real hosts (hosts_lib.sh, default settings): bytes written around the
# shim are never lost silently.  tests/progs/rawwrite on host 1 (under
# enorun) connects to a sink on host 2 (socat under enorun writing what it
# receives to a file), writes 1000 'A' with write(), 1000 'B' with
# syscall(SYS_write) — straight into its socketpair, past the shim — then
# 1000 'C' with write() every 50 ms.  Either the bytes arrive in order
# (A, B, C...: the sink's file says so) or the connection fails loudly:
# rawwrite's write() returns an error (EIO, README's error table), host 1's
# tund logs one line naming the program and its pid, and the sink got no C
# after a gap.  A sink holding A then C — a success that lost B — fails.
. "$(dirname "$0")/hosts_lib.sh"
hosts_up
hosts_no_dns
tund_up 1
tund_up 2

bg2 socat -u TCP-LISTEN:7201,reuseaddr "OPEN:$WORK/sink.bin,creat,trunc" 2>"$WORK/sink.log"; srv=$!
on_exit "kill $srv"
wait_listen 7201 "$S2"
timeout 60 ip netns exec "$H1" "$ENORUN" --socket "$S1" -- "$PROGS/rawwrite" "$IP2" 7201 \
  >"$WORK/raw.out" 2>"$WORK/raw.err" &
wait $! || fail "rawwrite failed: $(cat "$WORK/raw.err")"
res=$(cat "$WORK/raw.out")
note "rawwrite: $res ($(grep -o 'returned.*' "$WORK/raw.err"))"
wait_gone "$srv" 10 || kill "$srv"
got=$(tr -s 'ABC' <"$WORK/sink.bin" | head -c 10)
size=$(wc -c <"$WORK/sink.bin")
case "$res" in
  "error EIO after "*)
    line=$(grep "around libenoshim" "$WORK/tund-1.log") || fail "rawwrite got EIO but tund did not log the bypass"
    [ "$(echo "$line" | wc -l)" -eq 1 ] || fail "tund logged the bypass more than once: $line"
    echo "$line" | grep -q "rawwrite\[[1-9][0-9]*\] wrote 1000 bytes" ||
      fail "tund's line does not name rawwrite, its pid and the 1000 bytes: $line"
    note "tund: ${line#*warning: }"
    # the sink may have A (sent before the bypass was seen), never C
    case "$got" in
      ""|A) ;;
      *) fail "the sink got '$got' ($size bytes): bytes after the lost ones arrived";;
    esac
    note "the sink got ${size} bytes, all 'A' (written before the bypass), no 'C': nothing lost silently"
    ;;
  "no error after "*)
    [ "$got" = ABC ] || fail "rawwrite saw no error, but the sink got '$got' ($size bytes): bytes lost silently"
    note "no error, and the sink got A, B, C in order"
    ;;
  *) fail "rawwrite: unexpected result '$res'";;
esac
tund_alive 1; tund_alive 2
note ok
