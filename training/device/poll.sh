#!/bin/bash
# Wait, show the log, and copy the latest exports to $OUT (8 files max, each < 16 MiB).
# usage: bash training/device/poll.sh RUN_DIR SECONDS
RUN=${1:-/tmp/spool_run}; SECS=${2:-60}
end=$(( $(date +%s) + SECS ))
while [ $(date +%s) -lt $end ]; do
  sleep 10
  if grep -q "^.* done$" "$RUN/log.txt" 2>/dev/null; then break; fi
  if ! pgrep -f "training/train.py" > /dev/null; then echo "trainer not running"; break; fi
done
tail -n 25 "$RUN/stdout.txt" | grep -v "^\s*$" | cut -c1-400
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
E="$RUN/export"
for f in model.safetensors ae.safetensors config.json ema_f32_0.safetensors ema_f32_1.safetensors ae_f32.safetensors; do
  [ -f "$E/$f" ] && cp "$E/$f" "$OUT/"
done
[ -f "$RUN/log.txt" ] && cp "$RUN/log.txt" "$OUT/"
ls -t "$RUN"/samples/rollout_*.png 2>/dev/null | grep -v latest | head -1 | xargs -r -I{} cp {} "$OUT/rollout_latest.png"
[ -f "$RUN/samples/ae_recon.png" ] && [ ! -f "$OUT/rollout_latest.png" ] && cp "$RUN/samples/ae_recon.png" "$OUT/"
ls -la "$OUT"
