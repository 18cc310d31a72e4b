#!/usr/bin/env bash
# Reruns the 5-seed accuracy table of `tinyrnn train` on the bundled datasets: for every
# dataset, cell and seed it trains with the defaults (plus any extra `train` arguments given
# after `--`), evaluates the f32 model on the test split, quantizes it to q15 (calibrated on the
# training split) and evaluates that too. Prints one line per run on stderr and a markdown
# table (test accuracy per seed, mean, min, training steps/s) on stdout.
#
#   host-sim/scripts/seeds_table.sh [--seeds "0 1 2 3 4"] [--datasets "GunPoint BasicMotions"]
#                                   [--cells "gru lstm"] [--no-q15] [--bin PATH] [--data DIR]
#                                   [-- TRAIN ARGS…]
#
# --data DIR reads DIR/<dataset>_{TRAIN,TEST}.ts instead of the bundled data/ (e.g. other
# UEA/UCR sets, to check that the defaults generalise).
#
# Uses the release binary (`cargo build --release -p tinyrnn-sim`) and one rayon thread per
# run unless RAYON_NUM_THREADS is set, so steps/s compare across machines loads.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$root/target/release/tinyrnn"
seeds="0 1 2 3 4"
datasets="GunPoint BasicMotions"
cells="gru lstm"
q15=1
data="$root/data"
while [ $# -gt 0 ]; do
    case "$1" in
        --seeds) seeds="$2"; shift 2 ;;
        --datasets) datasets="$2"; shift 2 ;;
        --cells) cells="$2"; shift 2 ;;
        --no-q15) q15=0; shift ;;
        --bin) bin="$2"; shift 2 ;;
        --data) data="$2"; shift 2 ;;
        --) shift; break ;;
        *) echo "seeds_table.sh: unknown option $1 (train arguments go after --)" >&2; exit 2 ;;
    esac
done
[ -x "$bin" ] || { echo "seeds_table.sh: $bin missing; run cargo build --release -p tinyrnn-sim" >&2; exit 2; }
command -v jq >/dev/null || { echo "seeds_table.sh: needs jq" >&2; exit 2; }
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-1}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
pct() { awk -v a="$1" 'BEGIN { printf "%.1f", 100 * a }'; }

echo "| dataset | cell | f32 test accuracy, seeds ${seeds// //} | mean | min | q15 mean | q15 min | max \|q15 − f32\| | restarts | steps/s |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
for ds in $datasets; do
    tr="$data/${ds}_TRAIN.ts"
    te="$data/${ds}_TEST.ts"
    for cell in $cells; do
        f32s=() q15s=() sps=() restarts=0 gap=0
        for seed in $seeds; do
            m="$work/m.safetensors"
            j="$(RAYON_NUM_THREADS=$RAYON_NUM_THREADS "$bin" train --train "$tr" --cell "$cell" \
                --seed "$seed" --out "$m" --json "$@" 2>"$work/log")" ||
                { cat "$work/log" >&2; exit 1; }
            acc="$("$bin" eval --model "$m" --data "$te" --json | jq -r .accuracy)"
            f32s+=("$(pct "$acc")")
            sps+=("$(jq -r .steps_per_second <<<"$j")")
            restarts=$((restarts + $(jq -r '.restarts // 0' <<<"$j")))
            line="$ds $cell seed $seed: f32 $(pct "$acc")% train $(pct "$(jq -r .train_accuracy <<<"$j")")%"
            if [ "$q15" = 1 ]; then
                "$bin" quantize --model "$m" --calib "$tr" --format q15 --out "$work/q.safetensors" >/dev/null
                qacc="$("$bin" eval --model "$work/q.safetensors" --data "$te" --json | jq -r .accuracy)"
                q15s+=("$(pct "$qacc")")
                gap="$(awk -v g="$gap" -v a="$acc" -v q="$qacc" 'BEGIN { d = 100 * (q - a); if (d < 0) d = -d; if (d > g) g = d; printf "%.1f", g }')"
                line="$line q15 $(pct "$qacc")%"
            fi
            echo "$line, $(jq -r '"restarts \(.restarts // 0), \(.steps_per_second | floor) steps/s"' <<<"$j")" >&2
        done
        stats() { printf '%s\n' "$@" | awk '{ s += $1; if (NR == 1 || $1 < m) m = $1 } END { printf "%.1f | %.1f", s / NR, m }'; }
        sps_mean="$(printf '%s\n' "${sps[@]}" | awk '{ s += $1 } END { printf "%.0f", s / NR }')"
        if [ "$q15" = 1 ]; then
            qcols="$(stats "${q15s[@]}") | $gap"
        else
            qcols="- | - | -"
        fi
        echo "| $ds | $cell | $(IFS=/; echo "${f32s[*]}") | $(stats "${f32s[@]}") | $qcols | $restarts | $sps_mean |"
    done
done
