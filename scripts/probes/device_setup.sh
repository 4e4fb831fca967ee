# Sourced by the device probes (scripts/probes/speed_call4.sh and later), from the repository root on the device:
# installs the carried wheels (.whl/, from ../shared/tools/device-wheels.sh) beside the image's torch, sets the
# environment, and records the card and versions in logs/gpu/card.txt.
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl*/*.whl >/dev/null 2>&1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 WANDB_MODE=disabled
mkdir -p logs/gpu
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > logs/gpu/card.txt 2>&1
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" >> logs/gpu/card.txt 2>&1
