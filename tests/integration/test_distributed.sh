#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Services as separate processes over RabbitMQ + PostgreSQL: `fluxo run
# ingest` (watched folder, relay) and three `fluxo run distribution` workers,
# each on a data dir of its own; the first worker seen applying a batch is
# killed with SIGKILL right away, mid-stream. The normalized tables in
# PostgreSQL must end up exactly as an SQLite-only import of the same file
# (counts, money total), with every staged chunk applied and none twice. On
# the way, amqp-consume (amqp-tools) receives one of the chunk CloudEvents
# from the exchange. FLUXO_DIST_ROWS sets the size (see dist_lib.sh; the
# issue's figure is 1M rows).
DIST_ROWS_DEFAULT=60000
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/dist_lib.sh"

dist_reset_pg
dist_amqp_bus
dist_generate 21
export FLUXO_DB=$pg
dist_start 3
dist_amqp_tap
dist_drop_file
dist_amqp_tap_check

dist_kill_first_busy_worker

dist_wait_done
dist_check_exact
dist_stop
