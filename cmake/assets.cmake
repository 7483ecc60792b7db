# SPDX-License-Identifier: MIT
# The embedded front-end assets library, fx_assets: Swagger UI for /docs.
#
# Swagger UI comes from the swagger-ui-dist npm package, pinned exactly by
# web/package.json and web/package-lock.json. At build time `npm ci` installs it
# into ${CMAKE_BINARY_DIR}/web (only when the lock or package.json changed), then
# tools/embed.c (a host program built here) writes the files we serve, plus our
# web/docs page, into a generated C source linked into fx_assets. Without npm, or
# when npm fails, the build fails and says to run `scripts/deps.sh build`: a binary
# without its /docs assets is never built silently.
#
# This file is also the script of the npm step (`cmake -P cmake/assets.cmake`),
# so the step can check npm, keep npm quiet on success and show its output and
# the fix on failure, which a bare add_custom_command COMMAND cannot.

if(CMAKE_SCRIPT_MODE_FILE)
  # Build-time npm step. In: NPM, SRC_DIR (web/), WEB_DIR (build tree), STAMP.
  if(NOT NPM OR NOT EXISTS "${NPM}")
    message(FATAL_ERROR "fluxo: npm not found (was '${NPM}'): it is needed to fetch the Swagger \
UI assets pinned by ${SRC_DIR}/package-lock.json. Install Node.js and npm with \
`scripts/deps.sh build`, then build again.")
  endif()
  file(MAKE_DIRECTORY "${WEB_DIR}")
  foreach(f package.json package-lock.json)
    file(COPY_FILE "${SRC_DIR}/${f}" "${WEB_DIR}/${f}" ONLY_IF_DIFFERENT)
  endforeach()
  # --ignore-scripts: swagger-ui-dist's dependency @scarf/scarf has an install
  # script (usage analytics); we only need files from the tarballs.
  execute_process(COMMAND "${NPM}" ci --ignore-scripts --no-audit --no-fund --loglevel=error
                  WORKING_DIRECTORY "${WEB_DIR}"
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    # npm's own words first, unformatted (FATAL_ERROR rewraps its text)
    message("${out}")
    message(FATAL_ERROR "fluxo: `npm ci` in ${WEB_DIR} failed (${rc}), so the Swagger UI assets \
pinned by ${SRC_DIR}/package-lock.json could not be installed (npm's output is above). If npm is \
missing or broken, run `scripts/deps.sh build`; if package.json and package-lock.json disagree, \
run `npm install --package-lock-only` in ${SRC_DIR}. The npm registry must be reachable. Then \
build again.")
  endif()
  file(TOUCH "${STAMP}")
  return()
endif()

find_program(FLUXO_NPM npm)
if(NOT FLUXO_NPM)
  message(FATAL_ERROR "fluxo: npm not found: it is needed at build time to fetch the Swagger UI \
assets pinned by web/package-lock.json. Install Node.js and npm with `scripts/deps.sh build`, \
then configure again.")
endif()

set(fx_web_src ${CMAKE_SOURCE_DIR}/web)
set(fx_web_build ${CMAKE_BINARY_DIR}/web)
set(fx_swagger ${fx_web_build}/node_modules/swagger-ui-dist)
set(fx_npm_stamp ${fx_web_build}/npm-ci.stamp)
# served name = source file; tools/embed.c gives each its content type and ETag
set(fx_asset_map
    index.html=${fx_web_src}/docs/index.html
    init.js=${fx_web_src}/docs/init.js
    swagger-ui.css=${fx_swagger}/swagger-ui.css
    swagger-ui-bundle.js=${fx_swagger}/swagger-ui-bundle.js
    favicon-32x32.png=${fx_swagger}/favicon-32x32.png
    # Apache-2.0 asks redistributors to pass on the license and the NOTICE; the
    # bundle's header points at its third-party license list by this file name
    LICENSE.swagger-ui=${fx_swagger}/LICENSE
    NOTICE.swagger-ui=${fx_swagger}/NOTICE
    swagger-ui-bundle.js.LICENSE.txt=${fx_swagger}/swagger-ui-bundle.js.LICENSE.txt)
set(fx_asset_local_files ${fx_web_src}/docs/index.html ${fx_web_src}/docs/init.js)
set(fx_asset_npm_files ${fx_asset_map})
list(FILTER fx_asset_npm_files INCLUDE REGEX "node_modules")
list(TRANSFORM fx_asset_npm_files REPLACE "^[^=]*=" "")

add_custom_command(OUTPUT ${fx_npm_stamp}
  BYPRODUCTS ${fx_asset_npm_files}
  COMMAND ${CMAKE_COMMAND} -DNPM=${FLUXO_NPM} -DSRC_DIR=${fx_web_src} -DWEB_DIR=${fx_web_build}
          -DSTAMP=${fx_npm_stamp} -P ${CMAKE_CURRENT_LIST_FILE}
  DEPENDS ${fx_web_src}/package.json ${fx_web_src}/package-lock.json ${CMAKE_CURRENT_LIST_FILE}
  COMMENT "Installing Swagger UI with npm ci (pinned by web/package-lock.json)"
  VERBATIM)

add_executable(fx_embed ${CMAKE_SOURCE_DIR}/tools/embed.c)
set(fx_assets_data ${CMAKE_BINARY_DIR}/fx_assets_data.c)
add_custom_command(OUTPUT ${fx_assets_data}
  COMMAND fx_embed ${fx_assets_data} ${fx_asset_map}
  DEPENDS fx_embed ${fx_npm_stamp} ${fx_asset_local_files}
  COMMENT "Embedding the /docs assets"
  VERBATIM)

file(GLOB fx_assets_srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/assets/*.c)
add_library(fx_assets STATIC ${fx_assets_srcs} ${fx_assets_data})
target_include_directories(fx_assets PUBLIC ${CMAKE_SOURCE_DIR}/include)
