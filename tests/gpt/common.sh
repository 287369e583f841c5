# Shared by the tg-gpt shell tests (sourced): the program, a scratch directory removed on exit, and helpers.
# Usage in a test: source "$(dirname "$0")/common.sh" "$@"   (argument 1: the path of tg-gpt)
set -euo pipefail
TG_GPT=${1:?usage: $0 path/to/tg-gpt}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tg-gpt-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# The value of a numeric field in a JSON line: json_field '{"a":1.5}' a -> 1.5
json_field() { sed -n "s/.*\"$2\":\([-0-9.eE+]*\).*/\1/p" <<<"$1"; }

# JSON lines without the timing field, which differs from run to run.
without_timing() { sed 's/"tokens_per_s":[-0-9.eE+]*,//' "$1"; }

# A small text corpus of its own, so the tests do not depend on the fortunes package: 400 numbered lines.
make_corpus() {
  local f="$WORK/corpus.txt"
  for i in $(seq 1 400); do
    echo "Line $i: the quick brown fox jumps over the lazy dog, and the cat watches it."
  done > "$f"
  echo "$f"
}

# tiny preset, 2 threads (bit-exact comparisons need the same thread count), no sampling at the end.
train_tiny() { "$TG_GPT" train --preset tiny --threads 2 --sample-tokens 0 "$@"; }
