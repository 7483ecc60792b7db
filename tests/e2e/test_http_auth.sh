#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Authentication of the HTTP API as an attacker tries it: no token, malformed
# Authorization headers, tampered signatures and payloads, "alg": "none",
# HS256 tokens signed with the RS256 public key, expired and not-yet-valid
# tokens, wrong issuer and audience, missing scopes; and the OAuth2 token
# endpoint (password and client-credentials grants, every error code).
# Tokens are built by hand with python3 from the server's own key.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/http_lib.sh"

export FLUXO_AUTH_DEV=true
export FLUXO_AUTH_LEEWAY=0s # no clock skew allowed: a token 5 s past exp is expired
start_server hs256 fluxo run ingest
hs_pid=$SERVER_PID
# the development secret: its hex text is the HMAC key (trailing newline trimmed)
secret=$(tr -d ' \r\n' <"$FLUXO_DATA_DIR/jwt.secret")
[ ${#secret} -ge 32 ] || fail "development secret has ${#secret} characters"
JSON=(-H "Content-Type: application/json")
HS='{"alg":"HS256","typ":"JWT"}'
rec='{"nome":"Ana","email":"ana@example.com","produto":"Caneta","quantidade":1,"valor_unitario":"1,00","forma_pagamento":"Pix"}'

# expect_401 WHAT TOKEN DETAIL_SUBSTRING: GET /status with the token is refused
expect_401() {
  req GET /status -H "Authorization: Bearer $2"
  expect_problem "$1" 401 "$3"
  check "$1: WWW-Authenticate names the bearer error" "'Bearer' in h.get('www-authenticate', '') and 'invalid_token' in h.get('www-authenticate', '')"
}

# ---- the hand-made tokens are right: a good one is accepted ------------------
good=$(jwt_hmac "$secret" "$HS" "$(claims)")
req GET /status -H "Authorization: Bearer $good"
expect_status "a hand-made HS256 token with the server's secret" 200
req GET /status -H "Authorization: bearer $good"
expect_status "the auth scheme is case-insensitive" 200

# ---- no token, malformed Authorization headers ------------------------------------
req GET /status
expect_problem "no Authorization header" 401 "missing bearer token"
check "401 carries WWW-Authenticate: Bearer" "h.get('www-authenticate', '').startswith('Bearer')"
for a in "Basic dXNlcjpwYXNzd29yZDEyMw==" "Token $good" "Bearer" "$good"; do
  req GET /status -H "Authorization: $a"
  expect_problem "Authorization: ${a:0:20}..." 401 "Bearer <token>"
  check "Authorization: ${a:0:20}...: WWW-Authenticate" "h.get('www-authenticate', '').startswith('Bearer')"
done
req GET /status -H "Authorization: Bearer    "
expect_problem "a blank bearer token" 401 "empty bearer token"
expect_401 "a token of one part" "not-a-jwt" "part"
expect_401 "a token of two parts" "abc.def" "2 parts"
expect_401 "a token of four parts" "$good.xyz" "more than three parts"
expect_401 "a token with a non-base64url character" "${good:0:10}*${good:11}" "base64url"
expect_401 "a token whose header is not JSON" "$(printf 'bm90IGpzb24.%s' "${good#*.}")" "header is not valid JSON"
long=$(head -c 2800 /dev/zero | tr '\0' 'a')
expect_401 "an 8402-byte token" "$long.$long.$long" "limit"

# ---- forgeries -------------------------------------------------------------------
expect_401 "a tampered signature" "$(jwt_tamper "$good" signature)" "signature does not match"
limited=$(jwt_hmac "$secret" "$HS" "$(claims scope=read sub=reader)")
expect_401 "a tampered payload (scopes raised, signature kept)" "$(jwt_tamper "$limited" payload)" "signature does not match"
expect_401 "alg none, no signature" "$(jwt_unsigned '{"alg":"none","typ":"JWT"}' "$(claims)")" "unsigned tokens are never accepted"
expect_401 "alg NoNe, no signature" "$(jwt_unsigned '{"alg":"NoNe","typ":"JWT"}' "$(claims)")" "unsigned tokens are never accepted"
none_signed=$(jwt_hmac "$secret" '{"alg":"none"}' "$(claims)")
expect_401 "alg none with a valid HMAC" "$none_signed" "unsigned tokens are never accepted"
expect_401 "alg HS512" "$(jwt_hmac "$secret" '{"alg":"HS512","typ":"JWT"}' "$(claims)")" "HS512"
expect_401 "no alg in the header" "$(jwt_hmac "$secret" '{"typ":"JWT"}' "$(claims)")" "alg"
expect_401 "a header with crit" "$(jwt_hmac "$secret" '{"alg":"HS256","crit":["exp"]}' "$(claims)")" "crit"
expect_401 "signed with another secret" "$(jwt_hmac "another-secret-of-more-than-32-bytes!!" "$HS" "$(claims)")" "signature does not match"
expect_401 "two alg members in the header" "$(jwt_hmac "$secret" '{"alg":"HS256","alg":"none"}' "$(claims)")" "header is not valid JSON"

# ---- time window, issuer, audience, subject ------------------------------------------
expect_401 "expired 5 s ago (leeway 0)" "$(jwt_hmac "$secret" "$HS" "$(claims exp=-5)")" "expired"
expect_401 "not valid for another hour (nbf)" "$(jwt_hmac "$secret" "$HS" "$(claims nbf=+3600)")" "not valid before"
expect_401 "no exp" "$(jwt_hmac "$secret" "$HS" "$(claims exp=)")" "no exp"
expect_401 "exp as a string" "$(jwt_hmac "$secret" "$HS" "$(claims exp='"tomorrow"')")" "not a number"
expect_401 "another issuer" "$(jwt_hmac "$secret" "$HS" "$(claims iss=https://evil.example)")" "issuer"
expect_401 "no issuer" "$(jwt_hmac "$secret" "$HS" "$(claims iss=)")" "iss"
expect_401 "another audience" "$(jwt_hmac "$secret" "$HS" "$(claims aud=other-api)")" "audience"
expect_401 "an audience list without ours" "$(jwt_hmac "$secret" "$HS" "$(claims 'aud=["a","b"]')")" "audience"
expect_401 "no audience" "$(jwt_hmac "$secret" "$HS" "$(claims aud=)")" "aud"
expect_401 "no subject" "$(jwt_hmac "$secret" "$HS" "$(claims sub=)")" "sub"
req GET /status -H "Authorization: Bearer $(jwt_hmac "$secret" "$HS" "$(claims 'aud=["other","fluxo-api"]')")"
expect_status "an audience list that holds ours" 200

# a token verified once is cached; the cache must still see it expire
short=$(fluxo token shortlived --scopes read --ttl 4s 2>/dev/null)
req GET /status -H "Authorization: Bearer $short"
expect_status "a 4-second token, fresh" 200
short_expired() {
  req GET /status -H "Authorization: Bearer $short"
  [ "$STATUS" = 401 ]
}
wait_for 20 "the cached 4-second token to be refused" short_expired
expect_problem "the cached token once expired" 401 "expired"

# ---- scopes ------------------------------------------------------------------------------
read_only=$(fluxo token reader --scopes read 2>/dev/null)
req POST /compras -H "Authorization: Bearer $read_only" "${JSON[@]}" --data-binary "$rec"
expect_problem "a read-only token on POST /compras" 403 "ingest:write"
req POST /api/v1/pipelines/vendas/records -H "Authorization: Bearer $read_only" "${JSON[@]}" --data-binary "$rec"
expect_problem "a read-only token on POST records" 403 "ingest:write"
req POST /api/v1/pipelines/vendas/files -H "Authorization: Bearer $read_only" -H "Content-Type: text/csv" --data-binary "a,b"
expect_problem "a read-only token on POST files" 403 "ingest:write"
write_only=$(fluxo token writer --scopes ingest:write 2>/dev/null)
for path in /status /clientes /produtos /compras /api/v1/pipelines; do
  req GET "$path" -H "Authorization: Bearer $write_only"
  expect_problem "an ingest-only token on GET $path" 403 "read"
done
req POST /api/v1/pipelines/vendas/records -H "Authorization: Bearer $write_only" "${JSON[@]}" --data-binary "$rec"
expect_status "an ingest-only token on POST records" 202
unknown_scope=$(jwt_hmac "$secret" "$HS" "$(claims 'scope=read superuser ingest:writer')")
req POST /api/v1/pipelines/vendas/records -H "Authorization: Bearer $unknown_scope" "${JSON[@]}" --data-binary "$rec"
expect_problem "unknown scope names grant nothing" 403 "ingest:write"
no_scope=$(jwt_hmac "$secret" "$HS" "$(claims scope=)")
req GET /status -H "Authorization: Bearer $no_scope"
expect_problem "a token without scope" 403 "read"
admin=$(fluxo token boss --scopes admin 2>/dev/null)
req GET /clientes -H "Authorization: Bearer $admin"
expect_status "an admin token reads" 200
req POST /api/v1/pipelines/vendas/records -H "Authorization: Bearer $admin" "${JSON[@]}" --data-binary "$rec"
expect_status "an admin token writes" 202
req GET /healthz -H "Authorization: Bearer garbage"
expect_status "public endpoints ignore the Authorization header" 200

# ---- POST /token ---------------------------------------------------------------------------
printf 'password123\n' | fluxo user add alice --scopes "ingest:write read" --password-stdin 2>/dev/null >/dev/null ||
  fail "fluxo user add alice failed"
client_secret=$(fluxo client add etl --scopes "ingest:write" 2>/dev/null)
[ ${#client_secret} -ge 32 ] || fail "fluxo client add printed '$client_secret'"
FORM=(-H "Content-Type: application/x-www-form-urlencoded")

# expect_oauth WHAT STATUS ERROR_CODE: an OAuth2 error as problem+json
expect_oauth() {
  expect_problem "$1" "$2"
  check "$1: OAuth2 error $3" "d.get('error') == '$3'"
  check "$1: Cache-Control: no-store" "h.get('cache-control') == 'no-store'"
}

req POST /token "${FORM[@]}" --data "grant_type=password&username=alice&password=password123"
expect_status "password grant" 200
check "token response members" "d['token_type'] == 'bearer' and d['scope'] == 'ingest:write read' and 3500 <= d['expires_in'] <= 3600 and d['access_token'].count('.') == 2"
check "token response: Cache-Control: no-store" "h.get('cache-control') == 'no-store'"
alice=$(body_get 'd["access_token"]')
check "alice's token names her" "json.loads(__import__('base64').urlsafe_b64decode(d['access_token'].split('.')[1] + '==')).get('sub') == 'alice'"
req GET /clientes -H "Authorization: Bearer $alice"
expect_status "alice's token reads" 200
req POST /token "${FORM[@]}" --data-urlencode "username=alice" --data-urlencode "password=password123" --data-urlencode "scope=read"
expect_status "password grant without grant_type, narrowed to read" 200
check "granted scope read" "d['scope'] == 'read'"
alice_read=$(body_get 'd["access_token"]')
req POST /compras -H "Authorization: Bearer $alice_read" "${JSON[@]}" --data-binary '{}'
expect_problem "alice's read token on POST /compras" 403 "ingest:write"
req POST /token "${FORM[@]}" --data "grant_type=password&username=alice&password=wrong-password"
expect_oauth "wrong password" 400 invalid_grant
wrong_pw_detail=$(body_get 'd["detail"]')
req POST /token "${FORM[@]}" --data "grant_type=password&username=nobody&password=password123"
expect_oauth "unknown user" 400 invalid_grant
soft_eq "unknown user and wrong password read the same" "$wrong_pw_detail" "$(body_get 'd["detail"]')"
req POST /token "${FORM[@]}" --data "grant_type=password&username=alice&password=password123&scope=admin"
expect_oauth "a scope alice does not hold" 400 invalid_scope
req POST /token "${FORM[@]}" --data "grant_type=password&username=alice&password=password123&scope=root"
expect_oauth "an unknown scope" 400 invalid_scope
req POST /token "${FORM[@]}" --data "grant_type=password&username=alice"
expect_oauth "password grant without password" 400 invalid_request
req POST /token "${FORM[@]}" --data "grant_type=authorization_code&code=x"
expect_oauth "grant_type=authorization_code" 400 unsupported_grant_type
req POST /token "${FORM[@]}" --data "scope=read"
expect_oauth "no grant_type" 400 unsupported_grant_type
req POST /token "${FORM[@]}" --data "grant_type=password&username=alice&password=%zz"
expect_oauth "bad percent-encoding" 400 invalid_request
req POST /token "${FORM[@]}" --data "grant_type=password&username=alice&username=bob&password=password123"
expect_oauth "a repeated form field" 400 invalid_request
req POST /token "${JSON[@]}" --data '{"grant_type":"password","username":"alice","password":"password123"}'
expect_oauth "a JSON body" 415 invalid_request
req GET /token
expect_problem "GET /token" 405

req POST /token "${FORM[@]}" --data-urlencode "grant_type=client_credentials" --data-urlencode "client_id=etl" --data-urlencode "client_secret=$client_secret"
expect_status "client credentials in the form" 200
check "client token scope" "d['scope'] == 'ingest:write' and d['token_type'] == 'bearer'"
etl=$(body_get 'd["access_token"]')
req POST /api/v1/pipelines/vendas/records -H "Authorization: Bearer $etl" "${JSON[@]}" --data-binary "$rec"
expect_status "the client's token writes" 202
req GET /clientes -H "Authorization: Bearer $etl"
expect_problem "the client's token cannot read" 403 "read"
req POST /token "${FORM[@]}" -u "etl:$client_secret" --data "grant_type=client_credentials"
expect_status "client credentials as HTTP Basic" 200
req POST /token "${FORM[@]}" -u "etl:not-the-secret-at-all" --data "grant_type=client_credentials"
expect_oauth "a wrong client secret" 401 invalid_client
req POST /token "${FORM[@]}" --data "grant_type=client_credentials&client_id=ghost&client_secret=whatever-secret-123"
expect_oauth "an unknown client" 401 invalid_client
req POST /token "${FORM[@]}" --data "grant_type=client_credentials&client_id=etl"
expect_oauth "client credentials without a secret" 400 invalid_request

stop_server "$hs_pid"
soft_eq "the HS256 server exits 0" 0 "$STOP_RC"

# ---- RS256: HS/RS confusion and foreign keys ---------------------------------------------
openssl genrsa -out "$T/rs.key" 2048 2>/dev/null
openssl rsa -in "$T/rs.key" -pubout -out "$T/rs.pub" 2>/dev/null
openssl genrsa -out "$T/other.key" 2048 2>/dev/null
export FLUXO_AUTH_ALG=RS256 FLUXO_AUTH_PUBLIC_KEY="$T/rs.pub" FLUXO_AUTH_PRIVATE_KEY="$T/rs.key"
export FLUXO_AUTH_ISSUER=https://idp.example.test FLUXO_AUTH_AUDIENCE=fluxo-e2e
start_server rs256 fluxo run ingest
rs_pid=$SERVER_PID
RS='{"alg":"RS256","typ":"JWT"}'
rs_claims() { claims iss=https://idp.example.test aud=fluxo-e2e "$@"; }

rs_token=$(fluxo token tester --scopes "read" 2>/dev/null)
soft_eq "fluxo token signs RS256" RS256 "$(jwt_part "$rs_token" 0 | python3 -c 'import json,sys; print(json.load(sys.stdin)["alg"])')"
soft_eq "with the configured issuer and audience" "https://idp.example.test fluxo-e2e" \
  "$(jwt_part "$rs_token" 1 | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["iss"], d["aud"])')"
req GET /status -H "Authorization: Bearer $rs_token"
expect_status "an RS256 token from fluxo token" 200
req GET /status -H "Authorization: Bearer $(jwt_rsa "$T/rs.key" "$RS" "$(rs_claims)")"
expect_status "a hand-made RS256 token with the server's private key" 200
expect_401 "HS256 signed with the RS256 public key PEM" "$(jwt_hmac "file:$T/rs.pub" "$HS" "$(rs_claims)")" '"HS256" is refused'
expect_401 "HS256 signed with the public key PEM, trailing newline trimmed" "$(jwt_hmac "$(cat "$T/rs.pub")" "$HS" "$(rs_claims)")" '"HS256" is refused'
expect_401 "alg none on the RS256 server" "$(jwt_unsigned '{"alg":"none"}' "$(rs_claims)")" "unsigned tokens are never accepted"
expect_401 "RS256 signed by another key" "$(jwt_rsa "$T/other.key" "$RS" "$(rs_claims)")" "signature does not match"
expect_401 "RS256 with a tampered payload" "$(jwt_tamper "$rs_token" payload)" "signature does not match"
expect_401 "RS256 with the default issuer" "$(jwt_rsa "$T/rs.key" "$RS" "$(rs_claims iss=fluxo)")" "issuer"
expect_401 "RS256 with the default audience" "$(jwt_rsa "$T/rs.key" "$RS" "$(rs_claims aud=fluxo-api)")" "audience"
expect_401 "RS256 expired" "$(jwt_rsa "$T/rs.key" "$RS" "$(rs_claims exp=-5)")" "expired"
req POST /token "${FORM[@]}" --data "grant_type=password&username=alice&password=password123"
expect_status "password grant on the RS256 server" 200
check "an RS256 token is issued" "json.loads(__import__('base64').urlsafe_b64decode(d['access_token'].split('.')[0] + '==')).get('alg') == 'RS256'"
req GET /clientes -H "Authorization: Bearer $(body_get 'd["access_token"]')"
expect_status "the granted RS256 token reads" 200

stop_server "$rs_pid"
soft_eq "the RS256 server exits 0" 0 "$STOP_RC"
finish_checks "all HTTP auth checks passed"
