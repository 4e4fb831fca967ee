"""Write the fp32 tiles that passed scripts/tune_favor_kernel.py (fastest first, at most two) into favor_triton's
TILE_CHOICES; none passed -> an empty tuple (fp32 then keeps the PyTorch path). Used by scripts/probes/speed_call.sh."""

import json
import re
import sys
from pathlib import Path

rows = json.loads(Path(sys.argv[1]).read_text())["rows"]
passed = sorted((r for r in rows if r.get("status") == "ok"), key=lambda r: r["ms"])[:2]
tiles = "".join(f"FavorKernelConfig({r['block_n']}, {r['block_f']}, {r['num_warps']}, False), " for r in passed)
source = Path("src/hierarchicalvlm/attention/ops/favor_triton.py")
text, count = re.subn(r'    "fp32": \(.*\),\n', f'    "fp32": ({tiles.rstrip(", ")}{"," if len(passed) == 1 else ""}),\n',
                      source.read_text())
assert count == 1, "TILE_CHOICES' fp32 line not found"
source.write_text(text)
print("fp32 tile choices:", [(r["block_n"], r["block_f"], r["num_warps"], r["ms"]) for r in passed])
