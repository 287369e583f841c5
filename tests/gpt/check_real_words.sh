#!/usr/bin/env bash
# What fraction of the words a trained GPT writes are English words? Samples about 2,000 bytes from a
# checkpoint (temperature 0.8, like README command 1) and looks up every alphabetic word in a dictionary
# (Debian's wamerican, /usr/share/dict/american-english, which scripts/setup.sh installs).
#
#   bash tests/gpt/check_real_words.sh build/examples/tg-gpt runs/small [MIN_FRACTION] [SEED]
#
# A word is a maximal run of ASCII letters, with an apostrophe inside allowed ("don't"); it counts as real if
# the dictionary holds it as written or in lower case ("The" -> "the"). Prints the fraction and (up to 30 of)
# the words not found; with MIN_FRACTION (e.g. 0.85) exits 1 when the fraction is lower. A measurement of a trained model,
# not a unit test: docs/gpt.md records what the README run scores, and tests/gpt/bench_readme_run.sh (a meson
# benchmark) trains the README run and requires 85% of it.
set -euo pipefail
TG_GPT=${1:?usage: $0 path/to/tg-gpt CHECKPOINT [MIN_FRACTION] [SEED]}
CKPT=${2:?usage: $0 path/to/tg-gpt CHECKPOINT [MIN_FRACTION] [SEED]}
MIN=${3:-}
SEED=${4:-1}
DICT=${DICT:-/usr/share/dict/american-english}
[ -r "$DICT" ] || { echo "no dictionary at $DICT (Debian package wamerican: bash scripts/setup.sh)" >&2; exit 2; }

raw=$(mktemp)
sample=$(mktemp)
trap 'rm -f "$raw" "$sample"' EXIT
# 2,000 bytes need at most 2,000 tokens; with subword tokens far fewer. Sample generously, keep 2,000 bytes.
for tokens in 1000 2000; do
  "$TG_GPT" sample --ckpt "$CKPT" --tokens "$tokens" --temperature 0.8 --seed "$SEED" > "$raw" 2> /dev/null
  head -c 2000 "$raw" > "$sample"
  [ "$(wc -c < "$sample")" -lt 2000 ] || break
done

grep -aoE "[A-Za-z]+('[A-Za-z]+)*" "$sample" | awk -v dict="$DICT" -v min="$MIN" '
  BEGIN { while ((getline w < dict) > 0) known[w] = 1 }
  { total++; if ($0 in known || tolower($0) in known) real++; else missing[$0]++ }
  END {
    if (total == 0) { print "real words: no alphabetic words in the sample"; exit 1 }
    printf "real words: %d of %d alphabetic words (%.1f%%) in 2000 bytes\n", real, total, 100 * real / total
    line = "not in the dictionary:"; shown = 0
    for (w in missing) if (shown++ < 30) line = line " " w
    if (shown > 30) line = line " (and " shown - 30 " more)"
    print line
    if (min != "" && real / total < min) { printf "below the minimum %.1f%%\n", 100 * min; exit 1 }
  }'
