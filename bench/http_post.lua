-- SPDX-License-Identifier: MIT
-- wrk script: one JSON sale per POST /api/v1/pipelines/vendas/records with a
-- bearer token (env FLUXO_BENCH_TOKEN). Each request is a different purchase
-- (its own date-time), so every row is validated, deduplicated and queued.
--
-- wrk runs on the same two cores as the server, so the script is kept cheap:
-- the request line and headers are built once (by wrk.format) and each
-- request only adds its Content-Length and body, written with concatenation
-- (which LuaJIT compiles; string.format, os.date and wrk.format per request
-- it does not). There is no response() callback: with one, wrk copies every
-- reply's headers and body into Lua. Replies other than 2xx are counted by
-- wrk ("Non-2xx or 3xx responses"), and bench/http.sh checks that every
-- request's row was stored.
local token = os.getenv("FLUXO_BENCH_TOKEN")
local counter = 0
local threads = {}
local head, tail -- the request before and after the Content-Length value

function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
  local probe = wrk.format(nil, nil, nil, "")
  local a, b = probe:find("Content-Length: 0", 1, true)
  head = probe:sub(1, a - 1) .. "Content-Length: "
  tail = probe:sub(b + 1)
end

local products = {"Caneta Azul", "Caderno 96 folhas", "Mochila Escolar", "Lápis HB", "Borracha"}
local payments = {"Pix", "Cartão de Crédito", "Boleto", "Dinheiro", "Débito"}
local two = {}
for i = 0, 99 do two[i] = (i < 10 and "0" or "") .. i end

-- UTC date of a day number (days since 1970-01-01), proleptic Gregorian
local floor = math.floor
local function civil(z)
  z = z + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local d = doy - floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400 + (m <= 2 and 1 or 0)
  return y, m, d
end

-- "YYYY-MM-DDTHH:MM:SSZ" of a Unix time
local day, day_text = -1, ""
local function iso(t)
  local days = floor(t / 86400)
  local s = t - days * 86400
  if days ~= day then
    local y, m, d = civil(days)
    day, day_text = days, y .. "-" .. two[m] .. "-" .. two[d] .. "T"
  end
  local h = floor(s / 3600)
  s = s - h * 3600
  local mi = floor(s / 60)
  return day_text .. two[h] .. ":" .. two[mi] .. ":" .. two[s - mi * 60] .. "Z"
end

function request()
  counter = counter + 1
  local c = counter % 5000
  local body = '{"nome":"Cliente ' .. c .. '","email":"cliente' .. c ..
    '@example.com","cpf_cnpj":"52998224725","produto":"' .. products[counter % 5 + 1] ..
    '","quantidade":' .. (counter % 7 + 1) .. ',"valor_unitario":"' .. (counter % 300 + 1) ..
    ',' .. two[counter % 100] .. '","forma_pagamento":"' .. payments[counter % 5 + 1] ..
    '","data_hora":"' .. iso(1700000000 + thread_id * 100000000 + counter) .. '"}'
  return head .. #body .. tail .. body
end
