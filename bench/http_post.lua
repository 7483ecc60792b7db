-- SPDX-License-Identifier: MIT
-- wrk script: one JSON sale per POST /api/v1/pipelines/vendas/records with a
-- bearer token (env FLUXO_BENCH_TOKEN). Each request is a different purchase
-- (its own date-time), so every row is validated, deduplicated and queued.
local token = os.getenv("FLUXO_BENCH_TOKEN")
local counter = 0

local threads = {}

function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
end

local products = {"Caneta Azul", "Caderno 96 folhas", "Mochila Escolar", "Lápis HB", "Borracha"}
local payments = {"Pix", "Cartão de Crédito", "Boleto", "Dinheiro", "Débito"}

function request()
  counter = counter + 1
  local t = 1700000000 + thread_id * 100000000 + counter
  local body = string.format(
    '{"nome":"Cliente %d","email":"cliente%d@example.com","cpf_cnpj":"52998224725",' ..
    '"produto":"%s","quantidade":%d,"valor_unitario":"%d,%02d","forma_pagamento":"%s",' ..
    '"data_hora":"%s"}',
    counter % 5000, counter % 5000, products[counter % 5 + 1], counter % 7 + 1,
    counter % 300 + 1, counter % 100, payments[counter % 5 + 1],
    os.date("!%Y-%m-%dT%H:%M:%SZ", t))
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status ~= 202 then
    print("unexpected status " .. status .. ": " .. body)
  end
end
