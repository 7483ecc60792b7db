#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# systemd integration (deploy/systemd units use Type=notify and WatchdogSec):
# `fluxo run distribution` under a NOTIFY_SOCKET sends READY=1 once running,
# feeds the watchdog at half its period, and STOPPING=1 on SIGTERM. The
# socket is a real AF_UNIX datagram socket read by Python, as systemd's is.
. "$(dirname "$0")/lib.sh"

sock=$T/notify.sock
python3 - "$sock" >"$T/notify.log" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(20)
deadline = time.time() + 20
while time.time() < deadline:
    try:
        msg = s.recv(4096).decode()
    except socket.timeout:
        break
    print(msg.replace("\n", " | "), flush=True)
    if "STOPPING=1" in msg:
        break
PY
BG_PIDS+=($!)
wait_for 5 "notify socket" test -S "$sock"

fluxo migrate >/dev/null
NOTIFY_SOCKET=$sock WATCHDOG_USEC=400000 start_bg dist fluxo run distribution
pid=$LAST_PID
wait_for 10 "READY=1" grep -q "READY=1" "$T/notify.log"
wait_for 10 "two watchdog pings" sh -c "[ \$(grep -c WATCHDOG=1 '$T/notify.log') -ge 2 ]"
kill -TERM "$pid"
wait "$pid"
expect_eq "exit status after SIGTERM" 0 "$?"
wait_for 10 "STOPPING=1" grep -q "STOPPING=1" "$T/notify.log"
grep -q "STATUS=distribution running" "$T/notify.log" || fail "no STATUS line: $(cat "$T/notify.log")"
echo "ok - READY, STATUS, WATCHDOG and STOPPING sent over NOTIFY_SOCKET"
