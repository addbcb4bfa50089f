#!/usr/bin/env python3
"""Pack a training checkpoint for shipping: the model only (no optimiser state), weights stored as float16.

python tools/pack_checkpoint.py outputs/shapes_light_fpn/model_final.pth segmentoly/assets/shapes_light_fpn.pth
"""

import sys

from segmentoly.weights.checkpoint import pack_checkpoint

if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    path = pack_checkpoint(sys.argv[1], sys.argv[2])
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
