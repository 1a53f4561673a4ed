#!/usr/bin/env bash
# Installs the build into a temporary prefix and builds a consumer program against it twice:
# through pkg-config and through CMake's find_package(msbnb). Used by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
export LD_LIBRARY_PATH="$prefix/lib"
cc -std=c11 examples/readme_quickstart.c $(pkg-config --cflags --libs msbnb) -o "$prefix/qs_pc"
"$prefix/qs_pc" >/dev/null
mkdir -p "$prefix/consumer"
cat > "$prefix/consumer/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.18)
project(consumer C)
find_package(msbnb REQUIRED)
add_executable(qs $PWD/examples/readme_quickstart.c)
target_link_libraries(qs msbnb::msbnb_static)
CM
cmake -S "$prefix/consumer" -B "$prefix/consumer/b" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/consumer/b" >/dev/null
"$prefix/consumer/b/qs" >/dev/null
echo "install: headers, libraries, pkg-config and CMake package work from $prefix"
