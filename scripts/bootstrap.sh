#!/usr/bin/env bash
# Installs the Debian packages msbnb needs to build and test, when they are missing.
# As root it runs apt-get itself; otherwise it prints the exact command and fails.
set -euo pipefail

need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_pc() { pkg-config --exists "$1" 2>/dev/null; }

have_cmd cc || need+=(build-essential)
have_cmd cmake || need+=(cmake)
have_cmd pkg-config || need+=(pkg-config)
have_cmd clang || need+=(clang)
[ -e /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a ] || \
  ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.asan-*.a >/dev/null 2>&1 || need+=(libclang-rt-dev)
ls /usr/lib/llvm-*/lib/libomp.so >/dev/null 2>&1 || need+=(libomp-dev)
have_pc libcjson || need+=(libcjson-dev)
have_pc openblas || need+=(libopenblas-dev)
have_pc libpcre2-8 || need+=(libpcre2-dev)
have_pc libutf8proc || need+=(libutf8proc-dev)
[ -e /usr/include/oneapi/dnnl/dnnl.h ] || need+=(libdnnl-dev)
have_cmd python3 || need+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)

[ ${#need[@]} -eq 0 ] && exit 0

line="apt-get update && apt-get install -y ${need[*]}"
if [ "$(id -u)" = 0 ]; then
  echo "bootstrap: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${need[@]}" >/dev/null
else
  echo "bootstrap: missing packages. Run as root:" >&2
  echo "  sudo sh -c '$line'" >&2
  exit 1
fi
