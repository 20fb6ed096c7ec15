#!/bin/bash
# Start the training run in its own process session on the device machine (it outlives the call).
# usage: bash training/device/launch.sh RUN_DIR [train.py args...]
RUN=${1:-/tmp/spool_run}; shift
mkdir -p "$RUN"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" 2>&1 | tail -1
PYTHONUNBUFFERED=1 setsid nohup python3 training/train.py --out "$RUN" "$@" > "$RUN/stdout.txt" 2>&1 < /dev/null &
echo "launched pid $!"
