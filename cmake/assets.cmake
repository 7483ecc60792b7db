# SPDX-License-Identifier: MIT
# Placeholder: the embedded front-end assets library (fx_assets).
add_library(fx_assets STATIC ${CMAKE_SOURCE_DIR}/src/assets/assets.c)
target_include_directories(fx_assets PUBLIC ${CMAKE_SOURCE_DIR}/include)
