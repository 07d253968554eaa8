#!/usr/bin/env bash
# The portable build against a -march=native build on this CPU (issue 26):
# serving throughput and TPOT per weight dtype at concurrency 1 and 16, for
#   native    a build with -DPAGODA_NATIVE=ON (everything compiled for this CPU)
#   portable  the default build (kernels chosen at run time: the CPU's best)
#   avx2      the portable build with PAGODA_ISA=avx2 (kernels and oneDNN capped)
# in the same minutes, each point the median of PASSES passes of
# `pagoda bench serve --repeat`, the issue-9 workload (155 prompt tokens, 128
# output tokens, greedy). Writes OUT_DIR/<build>_<dtype>_c<conc>.json and
# prints a table (bench/isa_compare_table.py).
#
# Usage: bench/isa_compare.sh NATIVE_PAGODA PORTABLE_PAGODA MODEL TOKENIZER OUT_DIR [PASSES] [DTYPES] [BUILDS]
# Example (BENCHMARKS.md, "Portable build against native"):
#   cmake -S . -B build/native -G Ninja -DCMAKE_BUILD_TYPE=Release -DPAGODA_NATIVE=ON -DPAGODA_BUILD_TESTS=OFF
#   cmake --build build/native --target pagoda
#   bench/isa_compare.sh build/native/pagoda build/release/pagoda /tmp/bench-200m.bin models/tokenizer.bin /tmp/isa 3
set -euo pipefail
native=${1:?usage: isa_compare.sh NATIVE_PAGODA PORTABLE_PAGODA MODEL TOKENIZER OUT_DIR [PASSES] [DTYPES] [BUILDS]}
portable=${2:?portable pagoda}
model=${3:?model}
tok=${4:?tokenizer}
out=${5:?out dir}
passes=${6:-3}
dtypes=${7:-int8 bf16 f32}
builds=${8:-native portable avx2}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); $(date -u '+%Y-%m-%d %H:%M UTC')"
for dtype in $dtypes; do
  for conc in 1 16; do
    for build in $builds; do
      bin=$portable isa=
      [[ $build == native ]] && bin=$native
      [[ $build == avx2 ]] && isa=avx2
      dur=15
      [[ $conc == 1 ]] && dur=10
      name="${build}_${dtype}_c${conc}"
      echo "== $name ($(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))"
      PAGODA_ISA=$isa "$here/serve_bench.sh" "$bin" 18430 \
        "--model $model --tokenizer $tok --set model.weight_dtype=$dtype" \
        --input-len 155 --output-len 128 --ignore-eos --temperature 0 --no-progress \
        --max-concurrency "$conc" --duration "$dur" --repeat "$passes" --warmup-requests 2 \
        --result-file "$out/$name.json" >"$out/$name.txt" 2>&1 || echo "   failed: see $out/$name.txt"
    done
  done
done
python3 "$here/isa_compare_table.py" "$out"
