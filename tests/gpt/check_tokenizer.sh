#!/usr/bin/env bash
# tg-gpt tokenizer train|encode|decode: training is deterministic, encode/decode round-trip any bytes, special
# tokens only with --special, and bad files or ids exit with status 2 and a message.
source "$(dirname "$0")/common.sh" "$@"
corpus=$(make_corpus)

"$TG_GPT" tokenizer train --data "$corpus" --vocab 300 --out "$WORK/a.json" 2> "$WORK/train.txt"
grep -q "300 tokens" "$WORK/train.txt" || fail "train did not report 300 tokens: $(cat "$WORK/train.txt")"
"$TG_GPT" tokenizer train --data "$corpus" --vocab 300 --out "$WORK/b.json" --threads 1 2> /dev/null
cmp -s "$WORK/a.json" "$WORK/b.json" || fail "training twice gave different tokenizer.json files"
grep -q '"type": "BPE"' "$WORK/a.json" || fail "tokenizer.json lacks the BPE model"

printf 'the quick brown fox\n caf\xc3\xa9 \xff\xfe end  ' > "$WORK/text.bin"
"$TG_GPT" tokenizer encode --tokenizer "$WORK/a.json" < "$WORK/text.bin" > "$WORK/ids.json"
grep -qE '^\[[0-9]+(, [0-9]+)*\]$' "$WORK/ids.json" || fail "encode did not print one JSON array: $(cat "$WORK/ids.json")"
"$TG_GPT" tokenizer decode --tokenizer "$WORK/a.json" < "$WORK/ids.json" > "$WORK/back.bin"
cmp -s "$WORK/text.bin" "$WORK/back.bin" || fail "decode(encode(text)) differs from the text"
n_bytes=$(wc -c < "$WORK/text.bin")
n_ids=$(tr ',' '\n' < "$WORK/ids.json" | wc -l)
[ "$n_ids" -lt "$n_bytes" ] || fail "BPE gave $n_ids tokens for $n_bytes bytes"

eot=$(printf '<|endoftext|>' | "$TG_GPT" tokenizer encode --tokenizer "$WORK/a.json" --special)
[ "$eot" = "[299]" ] || fail "--special: expected [299] for <|endoftext|>, got $eot"
plain=$(printf '<|endoftext|>' | "$TG_GPT" tokenizer encode --tokenizer "$WORK/a.json")
[ "$plain" != "[299]" ] || fail "without --special, <|endoftext|> must be ordinary text"
echo "ok: encode/decode round trip ($n_bytes bytes -> $n_ids tokens), --special"

expect_status2() {  # expect_status2 "part of the message" command... (stdin from $INPUT)
  local want=$1; shift
  set +e
  "$@" < "${INPUT:-/dev/null}" > /dev/null 2> "$WORK/err.txt"
  local status=$?
  set -e
  [ "$status" -eq 2 ] || fail "expected exit status 2, got $status from: $*"
  grep -qF -- "$want" "$WORK/err.txt" || fail "the message lacks '$want': $(cat "$WORK/err.txt")"
  echo "ok: $(tail -n 1 "$WORK/err.txt")"
}
echo '[1, 300]' > "$WORK/bad_ids.json"
INPUT="$WORK/bad_ids.json" expect_status2 "token id 300 is outside [0, 300)" "$TG_GPT" tokenizer decode --tokenizer "$WORK/a.json"
echo '[1, "x"]' > "$WORK/bad_ids2.json"
INPUT="$WORK/bad_ids2.json" expect_status2 "must be integers" "$TG_GPT" tokenizer decode --tokenizer "$WORK/a.json"
head -c 2000 "$WORK/a.json" > "$WORK/truncated.json"
expect_status2 "$WORK/truncated.json: not JSON" "$TG_GPT" tokenizer encode --tokenizer "$WORK/truncated.json"
expect_status2 "$WORK/missing.json: no such file" "$TG_GPT" tokenizer encode --tokenizer "$WORK/missing.json"
expect_status2 "no such file or folder" "$TG_GPT" tokenizer train --data "$WORK/missing.txt" --out "$WORK/c.json"
echo ok
