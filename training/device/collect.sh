#!/bin/bash
# Wait up to SECONDS (or until the main run says done), print progress, copy results to $OUT.
# usage: bash training/device/collect.sh ROOT SECONDS [weights|final]  (runs 2-4)   ("weights": the ablation models instead)
ROOT=${1:-/tmp/c2}; SECS=${2:-60}; MODE=$3
# second judge stage: once the ablation runs have left GPU 1, continue the judge there for 3 minutes
if [ -f "$ROOT/judge/judge.safetensors" ] && [ ! -d "$ROOT/judge2" ] && ! pgrep -f "variant" > /dev/null; then
  mkdir -p "$ROOT/judge2"
  CUDA_VISIBLE_DEVICES=1 PYTHONUNBUFFERED=1 setsid nohup python3 training/train_judge.py --out "$ROOT/judge2" \
    --minutes 3 --lr 1e-3 --init "$ROOT/judge/judge.safetensors" --seed 4 > "$ROOT/judge2/stdout.txt" 2>&1 < /dev/null &
  echo "launched judge2"
fi
end=$(( $(date +%s) + SECS ))
while [ $(date +%s) -lt $end ]; do
  sleep 10
  if ! pgrep -f "train(_judge)?\.py" > /dev/null; then break; fi
done
for d in "$ROOT"/*/; do
  n=$(basename "$d"); echo "== $n"; tail -n 4 "$d/stdout.txt" 2>/dev/null | cut -c1-300
  grep -h "val loss" "$d/log.txt" 2>/dev/null | tail -n 2
done
nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader
if [ "$MODE" = weights ]; then
  for v in scd fullres nonsep; do
    [ -f "$ROOT/abl_$v/export/model.safetensors" ] && cp "$ROOT/abl_$v/export/model.safetensors" "$OUT/abl_${v}_model.safetensors"
    [ -f "$ROOT/abl_$v/export/config.json" ] && cp "$ROOT/abl_$v/export/config.json" "$OUT/abl_${v}_config.json"
  done
else  # at most 8 files come back per call: logs and strips while running, weights with MODE=final
  for d in "$ROOT"/main "$ROOT"/alt; do  # run 2 has main only; runs 3 and 4 main and alt
    [ -d "$d/export" ] || continue; n=$(basename "$d")
    cp "$d/log.txt" "$OUT/${n}_log.txt" 2>/dev/null
    if [ "$MODE" = final ]; then
      for f in model.safetensors config.json; do [ -f "$d/export/$f" ] && cp "$d/export/$f" "$OUT/${n}_$f"; done
      # a --whiten run changes the AE too (the export's bytes differ from assets' even when it does not)
      grep -q "whitened the latent" "$d/log.txt" && cp "$d/export/ae.safetensors" "$OUT/${n}_ae.safetensors"
    else
      cp "$d/samples/rollout_latest.png" "$OUT/${n}_rollout.png" 2>/dev/null
    fi
  done
  if [ "$MODE" = final ]; then
    J="$ROOT/judge"; [ -f "$ROOT/judge2/judge.safetensors" ] && J="$ROOT/judge2"; [ -d "$ROOT/teach" ] && J="$ROOT/teach"
    for f in judge.safetensors judge.json; do [ -f "$J/$f" ] && cp "$J/$f" "$OUT/"; done
  else
    (cd "$ROOT" && tar cf "$OUT/side.tar" judge*/stdout.txt teach/stdout.txt teach/judge.json abl_*/log.txt \
      abl_*/stdout.txt abl_*/samples/rollout_latest.png abl_*/export/config.json 2>/dev/null)
  fi
fi
ls -la "$OUT"
