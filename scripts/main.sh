#!/usr/bin/env bash
# README command (1): set up, build, and run the main job.
# The GPT trainer (tg-gpt) is not written yet; until it lands this runs the most complete example:
# the two-moons MLP trained with autograd + AdamW.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
build/examples/tg-example-moons --dot moons-step.dot "$@"
