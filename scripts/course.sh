#!/usr/bin/env bash
# The course's tools (docs/course/README.md). The exercises are listed in tests/course/exercises.tsv; each
# one's solution sits in the real source between the lines "// BEGIN EXERCISE <name>" and "// END EXERCISE".
#
#   scripts/course.sh student OUT [--only LIST]
#       Writes a student copy of the repository (the files git tracks, plus untracked ones not ignored) to
#       OUT, with each marked body replaced by
#           throw tg::NotImplementedError("exercise <name>: see <page>");
#       --only ch3,ch6.layernorm_backward stubs just those chapters / exercises (hand out chapter by chapter).
#   scripts/course.sh grade [DIR]
#       Builds DIR (default: this tree) in DIR/build-course (library + tests/course only) and runs each
#       exercise's test. Prints one line per exercise, then a JSON summary, also written to
#       DIR/build-course/grade.json:
#           {"exercises": [{"exercise": ..., "chapter": ..., "page": ..., "passed": ..., "message": ...}, ...],
#            "passed": N, "total": M}
#       Exit status 0 when every exercise passes, 1 otherwise.
#   scripts/course.sh check
#       Checks that the markers, the test cases and exercises.tsv agree (used by CI).
#   scripts/course.sh ci
#       The round trip CI runs: check, write a student tree to build-course-student/, grade it, and require
#       that it compiles, that every exercise fails with its own "not implemented" message, that the
#       chapters' other tests still pass, and that the JSON lists every exercise.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
manifest=tests/course/exercises.tsv

die() { echo "course: $*" >&2; exit 2; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# "name<TAB>page<TAB>source" for each exercise of the manifest in tree $1.
exercises() { grep -v '^#' "$1/$manifest" | grep -v '^[[:space:]]*$'; }

chapter_of() { echo "${1%%.*}"; }  # ch6.layernorm_backward -> ch6

# ---- student ---------------------------------------------------------------------------------------------------

# Replaces the body of every selected exercise in file $1 (in place). $2: the "name<TAB>page" lines to stub.
stub_file() {
  local file=$1 selected=$2 tmp
  tmp=$(mktemp)
  awk -v selected="$selected" '
    BEGIN {
      n = split(selected, lines, "\n")
      for (i = 1; i <= n; i++) { split(lines[i], f, "\t"); if (f[1] != "") page[f[1]] = f[2] }
    }
    # The stub needs tg::NotImplementedError: include its header after the first include of the file.
    !included && /^#include / { print; print "#include \"core/not_implemented.h\"  // the exercise stubs below"; included = 1; next }
    skipping && /^[[:space:]]*\/\/ END EXERCISE[[:space:]]*$/ { skipping = 0; print; next }
    skipping { next }
    /^[[:space:]]*\/\/ BEGIN EXERCISE / {
      name = $4
      if (name in page) {
        indent = $0; sub(/[^[:space:]].*$/, "", indent)
        print
        print indent "throw tg::NotImplementedError(\"exercise " name ": see " page[name] "\");  // your code here"
        skipping = 1
        next
      }
    }
    { print }
    END { if (skipping) { print "course: unterminated exercise in " FILENAME > "/dev/stderr"; exit 1 } }
  ' "$file" > "$tmp"
  cat "$tmp" > "$file"
  rm -f "$tmp"
}

cmd_student() {
  local out="" only=""
  while [ $# -gt 0 ]; do
    case $1 in
      --only) only=${2:-}; shift 2 ;;
      --only=*) only=${1#--only=}; shift ;;
      -*) die "student: unknown option $1" ;;
      *) [ -z "$out" ] || die "student: one output directory, got '$out' and '$1'"; out=$1; shift ;;
    esac
  done
  [ -n "$out" ] || die "usage: course.sh student OUT [--only ch3,ch6.layernorm_backward]"
  if [ -e "$out" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ]; then
    die "student: $out exists and is not empty (remove it first)"
  fi
  local selected="" name page source files count=0
  while IFS=$'\t' read -r name page source; do
    if [ -n "$only" ]; then
      local match=0 item
      IFS=',' read -ra items <<< "$only"
      for item in "${items[@]}"; do
        [ "$item" = "$name" ] || [ "$item" = "$(chapter_of "$name")" ] && match=1
      done
      [ "$match" = 1 ] || continue
    fi
    selected+="$name"$'\t'"$page"$'\n'
    files+="$source"$'\n'
    count=$((count + 1))
  done < <(exercises "$root")
  [ "$count" -gt 0 ] || die "student: --only '$only' matches no exercise"
  git -C "$root" rev-parse --git-dir > /dev/null 2>&1 || die "student: $root is not a git checkout"
  mkdir -p "$out"
  # Tracked files and untracked ones that are not ignored, as they are in the working tree (so uncommitted
  # edits are included); files deleted in the working tree are skipped.
  (cd "$root" && git ls-files -z --cached --others --exclude-standard |
     while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
     tar --null -T - -cf -) | tar -xf - -C "$out"

  while IFS= read -r source; do
    [ -n "$source" ] && stub_file "$out/$source" "$selected"
  done < <(printf '%s' "$files" | sort -u)
  echo "course: wrote a student tree to $out with $count exercise stubs"
}

# ---- grade -----------------------------------------------------------------------------------------------------

json_string() {  # a JSON string literal for $1
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\t'/ }
  s=${s//$'\r'/ }
  s=${s//$'\n'/ }
  printf '"%s"' "$s"
}

# The one-line reason a test failed, from doctest's output: the first stub's message ("exercise NAME: see
# PAGE", caught by tg::course::attempt or by a CHECK) if one was reached, else the first failed check and its
# values or message.
failure_message() {
  local log=$1 line
  line=$(grep -m1 -o 'exercise [A-Za-z0-9_.]*: see docs/course/[A-Za-z0-9_.-]*\.md' "$log" || true)
  if [ -n "$line" ]; then echo "not implemented yet: $line"; return; fi
  line=$(awk '/ ERROR: /{ found = 1; sub(/^.* ERROR: /, ""); msg = $0; next }
              found && /^(====|\[doctest\])/ { exit }
              found && NF { gsub(/^[[:space:]]+/, ""); msg = msg " | " $0; if (++extra == 3) exit }
              found && !NF && extra { exit }
              END { print msg }' "$log")
  if [ -n "$line" ]; then echo "$line"; return; fi
  tail -n 3 "$log" | tr '\n' ' '
}

cmd_grade() {
  local dir=${1:-$root}
  [ -f "$dir/$manifest" ] || die "grade: $dir has no $manifest (not a tapegrad tree?)"
  dir=$(cd "$dir" && pwd)
  local build="$dir/build-course"
  local log="$scratch/grade.log"
  local built=1
  if [ ! -f "$build/build.ninja" ]; then
    if [ -z "${CXX:-}" ] && command -v ccache > /dev/null; then export CXX="ccache g++"; fi
    meson setup "$build" "$dir" --buildtype=release -Dexamples=false > "$log" 2>&1 || built=0
  fi
  if [ "$built" = 1 ]; then
    echo "course: building $dir (library and tests/course)" >&2
    meson compile -C "$build" tests/course/tg-course > "$log" 2>&1 || built=0
  fi
  local build_error=""
  if [ "$built" = 0 ]; then
    build_error="the tree does not build: $(grep -m1 -E 'error' "$log" || tail -n 1 "$log")"
    echo "course: build failed; the log follows" >&2
    tail -n 40 "$log" >&2
  fi

  local name page source passed message json="" n_pass=0 n_total=0
  while IFS=$'\t' read -r name page source; do
    n_total=$((n_total + 1))
    if [ "$built" = 0 ]; then
      passed=false
      message=$build_error
    else
      local status=0
      "$build/tests/course/tg-course" -ts="course-$(chapter_of "$name")" -tc="$name" > "$log" 2>&1 || status=$?
      if [ "$status" = 0 ] && grep -qE 'test cases: *1 \| *1 passed' "$log"; then
        passed=true
        message="ok"
      elif [ "$status" = 0 ]; then
        passed=false
        message="no test case named $name in suite course-$(chapter_of "$name")"
      else
        passed=false
        message=$(failure_message "$log")
      fi
    fi
    if [ "$passed" = true ]; then
      n_pass=$((n_pass + 1))
      printf 'PASS  %-28s\n' "$name"
    else
      printf 'FAIL  %-28s %s\n' "$name" "$message"
    fi
    [ -z "$json" ] || json+=$',\n'
    json+="  {\"exercise\": $(json_string "$name"), \"chapter\": $(json_string "$(chapter_of "$name")"), "
    json+="\"page\": $(json_string "$page"), \"passed\": $passed, \"message\": $(json_string "$message")}"
  done < <(exercises "$dir")

  echo "course: $n_pass of $n_total exercises pass"
  local summary
  summary=$(printf '{"exercises": [\n%s\n], "passed": %d, "total": %d}\n' "$json" "$n_pass" "$n_total")
  mkdir -p "$build"
  printf '%s\n' "$summary" > "$build/grade.json"
  printf '%s\n' "$summary"
  [ "$n_pass" = "$n_total" ]
}

# ---- check -----------------------------------------------------------------------------------------------------

cmd_check() {
  cd "$root"
  local bad=0 name page source begins ends
  while IFS=$'\t' read -r name page source; do
    [ -f "$source" ] || { echo "course check: $name: source $source does not exist"; bad=1; continue; }
    [ -f "$page" ] || { echo "course check: $name: page $page does not exist"; bad=1; }
    begins=$(grep -c "^[[:space:]]*// BEGIN EXERCISE $name[[:space:]]*\$" "$source" || true)
    [ "$begins" = 1 ] || { echo "course check: $name: $begins BEGIN markers in $source (expected 1)"; bad=1; }
    local test_file
    test_file=$(grep -l "TEST_CASE(\"$name\")" tests/course/test_"$(chapter_of "$name")"_*.cpp 2>/dev/null || true)
    [ -n "$test_file" ] || { echo "course check: $name: no TEST_CASE(\"$name\") in tests/course/test_$(chapter_of "$name")_*.cpp"; bad=1; }
    if [ -n "$test_file" ] && ! grep -q "TEST_SUITE(\"course-$(chapter_of "$name")\")" "$test_file"; then
      echo "course check: $name: $test_file is not in TEST_SUITE(\"course-$(chapter_of "$name")\")"; bad=1
    fi
  done < <(exercises "$root")
  # Every marker in the source belongs to a listed exercise, and BEGIN/END pair up in each file.
  local file
  while IFS= read -r file; do
    while IFS= read -r name; do
      exercises "$root" | cut -f1 | grep -x "$name" > /dev/null || { echo "course check: $file: exercise $name is not in $manifest"; bad=1; }
    done < <(sed -n 's|^[[:space:]]*// BEGIN EXERCISE \([^[:space:]]*\).*|\1|p' "$file")
    begins=$(grep -c '^[[:space:]]*// BEGIN EXERCISE ' "$file" || true)
    ends=$(grep -c '^[[:space:]]*// END EXERCISE[[:space:]]*$' "$file" || true)
    [ "$begins" = "$ends" ] || { echo "course check: $file: $begins BEGIN but $ends END markers"; bad=1; }
  done < <(git ls-files '*.cpp' '*.h' | xargs grep -l '^[[:space:]]*// BEGIN EXERCISE ' 2>/dev/null || true)
  if [ "$bad" = 0 ]; then echo "course check: $(exercises "$root" | wc -l) exercises: markers, tests and $manifest agree"; fi
  return "$bad"
}

# ---- ci --------------------------------------------------------------------------------------------------------

# docs/course/README.md shows the stub of ch6.layernorm_backward (the block after "In the copy each body is
# replaced by"); a student tree's file exists nowhere in the repository, so the docs snippet check cannot see it.
readme_stub_matches() {
  local shown
  shown=$(awk '/^In the copy each body is replaced by/ { found = 1; next }
               found && /^```/ { if (inside) exit; inside = 1; next }
               found && inside' "$root/docs/course/README.md")
  [ -n "$shown" ] || { echo "course ci: docs/course/README.md shows no stub"; return 1; }
  [[ $(cat "$1/kernels/layernorm.cpp") == *"$shown"* ]] ||
    { echo "course ci: the stub docs/course/README.md shows is not in the student tree's kernels/layernorm.cpp"; return 1; }
}

cmd_ci() {
  cd "$root"
  cmd_check
  local tree="$root/build-course-student"
  rm -rf "$tree"
  cmd_student "$tree"
  readme_stub_matches "$tree" || return 1
  local out="$scratch/ci.log" status=0
  cmd_grade "$tree" > "$out" || status=$?
  cat "$out"
  local bad=0 name page source
  [ -f "$tree/build-course/tests/course/tg-course" ] || { echo "course ci: the student tree does not compile"; return 1; }
  [ "$status" = 1 ] || { echo "course ci: grading the student tree should fail every exercise (status $status)"; bad=1; }
  while IFS=$'\t' read -r name page source; do
    # Each exercise fails with its own message: its test reached its own stub and no other exercise's.
    grep -qF "FAIL  $name" "$out" || { echo "course ci: $name does not fail in the student tree"; bad=1; }
    local line
    line=$(grep -F "FAIL  $name " "$out" || true)
    case $line in
      *"not implemented yet: exercise $name: see $page") ;;
      *) echo "course ci: $name fails with an unexpected message: ${line#FAIL  }"; bad=1 ;;
    esac
    grep -qF "{\"exercise\": \"$name\"" "$tree/build-course/grade.json" ||
      { echo "course ci: grade.json does not list $name"; bad=1; }
    # And no other exercise's stub shows up anywhere in its test's output.
    local others
    "$tree/build-course/tests/course/tg-course" -tc="$name" > "$scratch/one.log" 2>&1 || true
    others=$(grep -o 'exercise [A-Za-z0-9_.]*: see' "$scratch/one.log" | sort -u | grep -vxF "exercise $name: see" || true)
    [ -z "$others" ] || { echo "course ci: the test of $name reaches other exercises' stubs: $others"; bad=1; }
  done < <(exercises "$root")
  # The chapters' other tests (the tours) need no exercise: they pass in the student tree.
  if ! "$tree/build-course/tests/course/tg-course" -tc='*tour*' > "$out" 2>&1; then
    cat "$out"
    echo "course ci: the chapters' tour tests fail in the student tree"
    bad=1
  else
    tail -n 2 "$out"
  fi
  [ "$bad" = 0 ] && echo "course ci: student tree builds, every exercise fails with its own message, the tours pass"
  return "$bad"
}

case ${1:-} in
  student) shift; cmd_student "$@" ;;
  grade) shift; cmd_grade "$@" ;;
  check) shift; cmd_check ;;
  ci) shift; cmd_ci ;;
  *) die "usage: course.sh student OUT [--only LIST] | grade [DIR] | check | ci" ;;
esac
