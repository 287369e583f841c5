#!/usr/bin/env bash
# Installs, from Debian's archive, every package tapegrad's build, tests and examples use.
# Idempotent: packages already present are skipped, and it says what it installs.
set -euo pipefail

packages=(
  meson ninja-build g++ pkg-config      # build
  ccache                                # compiler cache: rebuilds (and CI runs on the same machine) reuse objects
  libxsimd-dev libtbb-dev               # kernels: SIMD wrappers and the thread pool
  nlohmann-json3-dev libcli11-dev       # JSON headers (safetensors, config.json); command-line parsing
  libstb-dev zlib1g-dev                 # images (stb_image) and gzip'd IDX files
  libpcre2-dev                          # GPT-2's pre-tokenization regex (Unicode classes, look-ahead, JIT)
  doctest-dev                           # unit tests
  graphviz                              # renders autograd graph pictures (the graph test checks our DOT with it)
  fortunes-min fortunes                 # the default GPT corpus
  dataset-fashion-mnist                 # the ViT example's data
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
  exit 0
fi

echo "setup: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then sudo_cmd=(); else sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
