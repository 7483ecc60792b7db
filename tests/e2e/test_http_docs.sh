#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The API's documentation: /openapi.json is OpenAPI 3.1 and documents every
# route of src/http/routes.c; /docs and its files are served from the binary
# (ETag, 304, no path tricks); and Swagger UI, loaded in a real headless
# chromium that may reach nothing but this server, renders the operations.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/http_lib.sh"

export FLUXO_AUTH_DEV=true
start_server ingest fluxo run ingest
ingest_pid=$SERVER_PID

# ---- /openapi.json ------------------------------------------------------------
req GET /openapi.json
expect_status "GET /openapi.json" 200
check "served as application/json" "h['content-type'].startswith('application/json')"
check "parses as a JSON object" "isinstance(d, dict)"
check "OpenAPI 3.1.x" "re.fullmatch(r'3\.1\.\d+', str(d.get('openapi')))"
check "info has a title and a version" "d['info']['title'] and d['info']['version']"
cp "$T/body" "$T/openapi.json"
# every route of the route table, as method and documented path ("name"
# column); a route that needs a scope must say how to authenticate
if python3 - "$FLUXO_SOURCE_DIR/src/http/routes.c" "$T/openapi.json" <<'PY'; then
import json, re, sys
src = open(sys.argv[1]).read()
routes = re.findall(r'\{\s*"([A-Z]+)",\s*"[^"]*",\s*"([^"]+)",\s*([A-Z_0-9| ]+),', src)
if len(routes) < 10:
    print(f"only {len(routes)} routes found in routes.c: the table's layout changed?", file=sys.stderr)
    sys.exit(1)
doc = json.load(open(sys.argv[2]))
paths = doc.get("paths") or {}
schemes = (doc.get("components") or {}).get("securitySchemes") or {}
problems = []
for m, p, scope in routes:
    op = (paths.get(p) or {}).get(m.lower())
    if op is None:
        problems.append(f"{m} {p}: not documented")
        continue
    if not op.get("responses"):
        problems.append(f"{m} {p}: no responses")
    if scope.strip() != "0":
        sec = op.get("security", doc.get("security")) or []
        if not sec or not all(name in schemes for req in sec for name in req):
            problems.append(f"{m} {p}: needs {scope.strip()} but declares no security scheme")
if problems:
    print("/openapi.json vs src/http/routes.c:\n  " + "\n  ".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"ok - /openapi.json documents all {len(routes)} routes of routes.c with responses and security")
PY
  :
else
  soft_fail "/openapi.json does not document every route of src/http/routes.c"
fi

# ---- /docs and its files ----------------------------------------------------------
# /docs is the page itself, or a redirect to /docs/ (where the page's
# relative URLs, ./swagger-ui.css and the like, resolve under /docs/)
req GET /docs
if [ "$STATUS" = 200 ]; then
  echo "ok - GET /docs -> 200"
else
  check "GET /docs redirects to /docs/" "'$STATUS' in ('301', '302', '307', '308') and h.get('location') in ('/docs/', '$U/docs/')"
fi
req GET /docs/
expect_status "GET /docs/" 200
check "an HTML page that loads Swagger UI" "h['content-type'].startswith('text/html') and 'swagger-ui' in b and h.get('etag')"
etag=$(hdr ETag)
req GET /docs/ -H "If-None-Match: $etag"
expect_status "GET /docs/ with its ETag" 304
check "304 has no body" "b == ''"
req GET /docs/swagger-ui-bundle.js
expect_status "GET /docs/swagger-ui-bundle.js" 200
check "JavaScript, cacheable by ETag" "'javascript' in h['content-type'] and h.get('etag') and len(b) > 100000"
req GET /docs/swagger-ui.css
expect_status "GET /docs/swagger-ui.css" 200
check "CSS" "h['content-type'].startswith('text/css')"
req GET /docs/nope.js
expect_problem "an unknown docs file" 404 "nope.js"
req GET /docs/..%2fjwt.secret
expect_problem "an encoded ../ in a docs file name" 404
req GET /docs/../data/jwt.secret --path-as-is
check "a literal ../ reaches no file" "'$STATUS' in ('400', '404') and not re.fullmatch(r'[0-9a-f]{64}\s*', b)"

# ---- Swagger UI in a real browser ---------------------------------------------------
command -v chromium >/dev/null || fail "chromium is not installed (scripts/deps.sh test installs it)"
# render PATH -> the DOM after scripts ran, in $T/dom.html; every host but this
# server resolves to nothing, so whatever renders came from the binary
render() {
  timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --no-first-run --user-data-dir="$T/chromium" \
    --host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" \
    --virtual-time-budget=10000 --dump-dom "$U$1" >"$T/dom.html" 2>"$T/chromium.err" ||
    fail "chromium failed on $1: $(grep -v dbus "$T/chromium.err" | tail -5)"
  grep -v dbus "$T/chromium.err" >"$T/chromium.log" || true # no session bus here: noise
}
# rendered DOM: the operations Swagger UI drew (tags stripped, paths unbroken)
rendered_has() {
  python3 - "$T/dom.html" "$@" <<'PY'
import re, sys
dom = open(sys.argv[1], encoding="utf-8").read()
text = re.sub(r"<wbr\s*/?>", "", dom)
missing = [n for n in sys.argv[2:] if n not in text]
if missing:
    print("not in the rendered page:", ", ".join(missing), file=sys.stderr)
    sys.exit(1)
PY
}
for page in /docs /docs/; do
  render "$page"
  if rendered_has 'class="swagger-ui' 'opblock' '/api/v1/pipelines/{name}/records' '/api/v1/batches/{id}' '/token'; then
    echo "ok - chromium renders the operations at $page"
  else
    soft_fail "Swagger UI at $page did not render the operations (DOM in $T/dom.html: $(grep -o 'No operations defined in spec!\|Failed to load API definition\|<div id="swagger-ui"></div>' "$T/dom.html" | head -1))"
  fi
done
req GET /metrics
check "the browser's fetches went to the docs routes" "re.search(r'fluxo_http_requests_total\{route=\"/docs/\{file\}\",method=\"GET\",status=\"200\"\} [1-9]', b) and re.search(r'fluxo_http_requests_total\{route=\"/openapi.json\",method=\"GET\",status=\"200\"\} [2-9]', b)"

stop_server "$ingest_pid"
soft_eq "ingest exits 0" 0 "$STOP_RC"
finish_checks "all HTTP docs checks passed"
