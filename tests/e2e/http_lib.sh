# SPDX-License-Identifier: MIT
# Helpers for the end-to-end tests of the HTTP API, sourced after lib.sh: start
# the server on a free port and wait for it, make requests with curl keeping
# the status, headers and body of the last one, check RFC 9457 problems, and
# build JSON Web Tokens by hand (python3, no JWT library) so that the tests can
# forge, tamper with and expire them the way an attacker would.
# shellcheck shell=bash disable=SC2154,SC2034  # T, LAST_PID come from lib.sh; STOP_RC, AUTH are for the tests

export FLUXO_AUTH_FAST_HASH=1 # argon2id at its minimum cost: tests only

# The interpreter itself, not a version-manager shim in front of it: a shim
# costs ~0.4 s a call and these tests make hundreds.
PYTHON=$(python3 -c 'import sys; print(sys.executable)')
python3() { "$PYTHON" "$@"; }

# The last request's outcome: STATUS (000 when no HTTP response came back),
# the body in $T/body, the headers in $T/headers.
STATUS=000
U=

# free_port -> a TCP port nobody listens on right now (the kernel's choice).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# server_up: /healthz answers 200.
server_up() { curl -sf -o /dev/null --max-time 2 "$U/healthz"; }

# alive PID: the process runs (a zombie waiting to be reaped does not count)
alive() {
  local s
  s=$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null) || return 1
  [ -n "$s" ] && [ "$s" != Z ]
}

# start_server NAME COMMAND...  (e.g. start_server api fluxo serve)
# Starts the server on a free port (FLUXO_HTTP_ADDR, exported so that the
# commands the test runs later see the same configuration) and waits for
# /healthz. Another process may grab the port between the probe and the bind:
# then it tries another one. Sets PORT, U (base URL) and SERVER_PID.
start_server() {
  local name=$1 try
  shift
  for try in 1 2 3 4 5; do
    PORT=$(free_port)
    U="http://127.0.0.1:$PORT"
    export FLUXO_HTTP_ADDR="127.0.0.1:$PORT"
    start_bg "$name" "$@"
    SERVER_PID=$LAST_PID
    local deadline=$(($(date +%s) + 60))
    while ! server_up; do
      if ! alive "$SERVER_PID"; then
        if grep -q "cannot listen" "$T/$name.log"; then
          echo "port $PORT was taken (try $try); another one" >&2
          continue 2
        fi
        fail "$name exited before answering /healthz (see $T/$name.log)"
      fi
      [ "$(date +%s)" -ge "$deadline" ] && fail "$name did not answer /healthz on port $PORT within 60 s"
      sleep 0.1
    done
    echo "ok - $name listening on port $PORT (pid $SERVER_PID)"
    return 0
  done
  fail "no free port found for $name after 5 tries"
}

# stop_server PID [SECONDS]: SIGTERM, wait for the exit; its status in STOP_RC.
stop_server() {
  local pid=$1 secs=${2:-60}
  kill -TERM "$pid"
  local deadline=$(($(date +%s) + secs))
  while alive "$pid"; do
    [ "$(date +%s)" -ge "$deadline" ] && fail "process $pid still running ${secs}s after SIGTERM"
    sleep 0.1
  done
  STOP_RC=0
  wait "$pid" || STOP_RC=$?
}

# req METHOD PATH [CURL_ARGS...]: one request to the server under test.
req() {
  local method=$1 path=$2
  shift 2
  : >"$T/headers"
  : >"$T/body"
  STATUS=$(curl -sS --max-time 60 -o "$T/body" -D "$T/headers" -w '%{http_code}' -X "$method" "$@" "$U$path" 2>"$T/curl.err") || true
  [ -n "$STATUS" ] || STATUS=000
}

# Bearer header arguments for curl: req GET /x "${AUTH[@]}"
auth_args() { AUTH=(-H "Authorization: Bearer $1"); }

# hdr NAME -> value of a response header of the last request (final response, "" if absent)
hdr() {
  tr -d '\r' <"$T/headers" | awk -v n="$(echo "$1" | tr '[:upper:]' '[:lower:]')" '
    /^HTTP\// { v = "" }
    { i = index($0, ":"); if (i && tolower(substr($0, 1, i - 1)) == n) { v = substr($0, i + 1); sub(/^[ \t]+/, "", v) } }
    END { print v }'
}

# show_last: the last response, for failure messages
show_last() {
  echo "--- last response: HTTP $STATUS" >&2
  tr -d '\r' <"$T/headers" >&2 || true
  head -c 2000 "$T/body" >&2 || true
  echo >&2
  [ -s "$T/curl.err" ] && cat "$T/curl.err" >&2
  return 0
}

# Checks of responses do not stop the test: a failed one is reported and
# counted, the next ones still run (each names its own request), and
# finish_checks fails the test at the end. Setup steps still fail at once.
FAILURES=0
LAST_OK=1
soft_fail() {
  echo "FAIL: $*" >&2
  FAILURES=$((FAILURES + 1))
  LAST_OK=0
}

# finish_checks MESSAGE: fail the test if any check failed, else print MESSAGE
finish_checks() {
  [ "$FAILURES" = 0 ] || fail "$FAILURES checks failed (see FAIL lines above)"
  echo "$1"
}

# soft_eq WHAT EXPECTED ACTUAL: like expect_eq, but counted instead of fatal
soft_eq() {
  if [ "$2" != "$3" ]; then
    soft_fail "$1: expected '$2', got '$3'"
  else
    echo "ok - $1 = $3"
  fi
}

# expect_status WHAT CODE: the last request got HTTP CODE (LAST_OK says whether)
expect_status() {
  LAST_OK=1
  if [ "$STATUS" != "$2" ]; then
    show_last
    soft_fail "$1: expected HTTP $2, got $STATUS"
    return 0
  fi
  echo "ok - $1 -> $2"
}

# checks WHAT EXPR [WHAT EXPR...] [-- NEEDLE...]: conditions on the last
# response, in one python run. In an expression d is the parsed JSON body (None
# when it is not JSON), b the body text, h the headers (lower-case names) and n
# the list of NEEDLEs. Skipped when the status check before them failed (the
# body is then not the one the expressions are about).
checks() {
  [ "$LAST_OK" = 1 ] || return 0
  local nfail=0
  python3 - "$T/body" "$T/headers" "$@" <<'PY2' || nfail=$?
import json, re, sys
b = open(sys.argv[1], encoding="utf-8", errors="replace", newline="").read()
try:
    d = json.loads(b)
except ValueError:
    d = None
h = {}
for line in open(sys.argv[2], encoding="latin-1"):
    line = line.rstrip("\r\n")
    if line.startswith("HTTP/"):
        h = {}
    elif ":" in line:
        k, _, v = line.partition(":")
        h[k.strip().lower()] = v.strip()
args = sys.argv[3:]
n = args[args.index("--") + 1:] if "--" in args else []
pairs = args[:args.index("--")] if "--" in args else args
failed = 0
for what, expr in zip(pairs[0::2], pairs[1::2]):
    try:
        ok = eval(expr)
    except Exception as e:  # a missing member is a failed check, with its reason
        print(f"check raised {type(e).__name__}: {e}", file=sys.stderr)
        ok = False
    if ok:
        print(f"ok - {what}")
    else:
        print(f"FAIL: {what} ({expr})", file=sys.stderr)
        failed += 1
sys.stdout.flush()
sys.exit(min(failed, 100))
PY2
  if [ "$nfail" != 0 ]; then
    show_last
    FAILURES=$((FAILURES + nfail))
  fi
  return 0
}

# check WHAT PYTHON_EXPR: one condition (see checks)
check() { checks "$1" "$2"; }

# body_get PYTHON_EXPR -> value from the last JSON body (d)
body_get() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($1)" "$T/body"; }

# expect_problem WHAT CODE [DETAIL_SUBSTRING...]: an RFC 9457 problem+json
# response with every member, its status in the body, the request's
# correlation id in the body and in X-Correlation-Id, and a detail that names
# the problem (each substring must appear in it).
expect_problem() {
  local what=$1 code=$2
  shift 2
  expect_status "$what" "$code"
  [ "$LAST_OK" = 1 ] || return 0
  local pairs=(
    "$what: problem+json" "h.get('content-type', '').startswith('application/problem+json')"
    "$what: problem members" "isinstance(d, dict) and all(isinstance(d.get(k), str) and d.get(k) for k in ('type', 'title', 'detail', 'instance', 'correlation_id')) and d.get('status') == $code"
    "$what: correlation id in body and header" "d['correlation_id'] == h.get('x-correlation-id')"
    "$what: traceparent" "re.fullmatch(r'00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}', h.get('traceparent', ''))"
  )
  local i=0 s
  for s in "$@"; do
    pairs+=("$what: detail names '$s'" "n[$i] in d['detail']")
    i=$((i + 1))
  done
  checks "${pairs[@]}" -- "$@"
}

# --- JSON Web Tokens, made by hand -------------------------------------------

# claims [NAME=VALUE...] -> a JSON claim set that this server would accept
# (iss fluxo, aud fluxo-api, sub tester, iat/nbf now, exp in 10 minutes, every
# scope), changed by the arguments: exp/nbf/iat with a sign are relative to
# now (exp=-60), a value that parses as JSON is taken as JSON, any other as a
# string, and NAME= removes the claim.
claims() {
  python3 - "$@" <<'PY'
import json, sys, time
now = int(time.time())
c = {"iss": "fluxo", "aud": "fluxo-api", "sub": "tester", "iat": now, "nbf": now,
     "exp": now + 600, "scope": "ingest:write read admin"}
for a in sys.argv[1:]:
    k, _, v = a.partition("=")
    if v == "":
        c.pop(k, None)
    elif k in ("exp", "nbf", "iat") and v[0] in "+-":
        c[k] = now + int(v)
    else:
        try:
            c[k] = json.loads(v)
        except ValueError:
            c[k] = v
print(json.dumps(c, separators=(",", ":")))
PY
}

# jwt_hmac KEY HEADER_JSON PAYLOAD_JSON -> header.payload.HMAC-SHA256(KEY)
# KEY is the literal key text, or file:PATH for the exact bytes of a file.
# The header is used as given: it may name any algorithm.
jwt_hmac() {
  python3 - "$@" <<'PY'
import base64, hashlib, hmac, sys
def b64(x): return base64.urlsafe_b64encode(x).rstrip(b"=").decode()
key = sys.argv[1]
key = open(key[5:], "rb").read() if key.startswith("file:") else key.encode()
si = b64(sys.argv[2].encode()) + "." + b64(sys.argv[3].encode())
print(si + "." + b64(hmac.new(key, si.encode(), hashlib.sha256).digest()))
PY
}

# jwt_unsigned HEADER_JSON PAYLOAD_JSON -> header.payload. (no signature)
jwt_unsigned() {
  python3 - "$@" <<'PY'
import base64, sys
def b64(x): return base64.urlsafe_b64encode(x).rstrip(b"=").decode()
print(b64(sys.argv[1].encode()) + "." + b64(sys.argv[2].encode()) + ".")
PY
}

# jwt_rsa PRIVATE_KEY_PEM HEADER_JSON PAYLOAD_JSON -> an RS256 signature by
# openssl (RSASSA-PKCS1-v1_5 with SHA-256) over header.payload
jwt_rsa() {
  python3 - "$@" <<'PY'
import base64, subprocess, sys
def b64(x): return base64.urlsafe_b64encode(x).rstrip(b"=").decode()
si = b64(sys.argv[2].encode()) + "." + b64(sys.argv[3].encode())
sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", sys.argv[1]], input=si.encode(),
                     capture_output=True, check=True).stdout
print(si + "." + b64(sig))
PY
}

# jwt_part TOKEN N -> the decoded JSON of part N (0 header, 1 payload)
jwt_part() {
  python3 - "$1" "$2" <<'PY'
import base64, sys
p = sys.argv[1].split(".")[int(sys.argv[2])]
print(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)).decode())
PY
}

# jwt_tamper TOKEN signature|payload -> the token with one change an attacker
# would make: a signature bit flipped in the middle (still valid base64url), or
# the payload replaced by the same claims with every scope and another subject,
# keeping the original signature.
jwt_tamper() {
  python3 - "$1" "$2" <<'PY'
import base64, json, sys
def b64(x): return base64.urlsafe_b64encode(x).rstrip(b"=").decode()
def unb64(p): return base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))
h, p, s = sys.argv[1].split(".")
if sys.argv[2] == "signature":
    raw = bytearray(unb64(s))
    raw[len(raw) // 2] ^= 0x01
    s = b64(bytes(raw))
else:
    c = json.loads(unb64(p))
    c["scope"] = "ingest:write read admin"
    c["sub"] = "mallory"
    p = b64(json.dumps(c, separators=(",", ":")).encode())
print(h + "." + p + "." + s)
PY
}

# --- raw HTTP, for what curl cannot do ---------------------------------------

# post_chunked PATH TOKEN CONTENT_TYPE FILE [PIECE_BYTES]: POST FILE with
# Transfer-Encoding: chunked (no Content-Length), reading while it sends so
# that an early answer (a limit hit mid-body) is seen even when the server
# stops reading; sets STATUS and writes $T/body and $T/headers.
post_chunked() {
  STATUS=$(python3 - "$PORT" "$1" "$2" "$3" "$4" "${5:-16384}" "$T/headers" "$T/body" <<'PY'
import select, socket, sys
port, path, tok, ctype, fname, piece = sys.argv[1:7]
piece = int(piece)
s = socket.create_connection(("127.0.0.1", int(port)), timeout=60)
head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {tok}\r\n"
        f"Content-Type: {ctype}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
resp = b""
def readable():
    return select.select([s], [], [], 0)[0]
def pull():
    global resp
    d = s.recv(65536)
    resp += d
    return d
try:
    s.sendall(head.encode())
    with open(fname, "rb") as f:
        while True:
            if readable() and not pull():
                break  # the server answered and closed
            if b"\r\n\r\n" in resp:
                break  # an answer before the end of the body
            data = f.read(piece)
            s.sendall(b"%x\r\n" % len(data) + data + b"\r\n")
            if not data:
                break
except OSError:
    pass  # stopped reading our body: what matters is whether an answer came
try:
    while True:
        if b"\r\n\r\n" in resp:
            hdr, _, body = resp.partition(b"\r\n\r\n")
            n = [int(l.split(b":")[1]) for l in hdr.split(b"\r\n") if l.lower().startswith(b"content-length:")]
            if n and len(body) >= n[0]:
                break
        if not pull():
            break
except OSError:
    pass
hdr, _, body = resp.partition(b"\r\n\r\n")
open(sys.argv[7], "wb").write(hdr + b"\r\n")
open(sys.argv[8], "wb").write(body)
line = hdr.split(b"\r\n")[0].split()
print(line[1].decode() if len(line) > 1 else "000")
PY
  ) || STATUS=000
}
