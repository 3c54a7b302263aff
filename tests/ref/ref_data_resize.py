#!/usr/bin/env python3
"""Reference test: the PIL-convention resize (datasets/image.c) vs torch.nn.functional.interpolate
with antialias=True (the same separable filters in float, PIL's coefficient formula). Ours rounds to
uint8 between passes with 22-bit coefficients like PIL, so values may differ by at most 1.
Usage: ref_data_resize.py PATH/TO/pb_tokdump"""
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(2)
DUMP = sys.argv[1]
rng = np.random.default_rng(0)
fails = 0
for mode in ("bilinear", "bicubic"):
    for (w, h, ow, oh, c) in [(28, 28, 224, 224, 1), (37, 23, 16, 40, 3), (64, 48, 13, 7, 3), (8, 8, 28, 28, 1)]:
        # values in [40, 215]: bicubic overshoot never reaches 0/255, so PIL's clipping between the
        # two passes (which torch does not do) cannot make the results differ
        img = rng.integers(40, 216, size=(h, w, c)).astype(np.uint8)
        out = subprocess.run([DUMP, "resize", mode, str(w), str(h), str(ow), str(oh), str(c)], input=img.tobytes(),
                             capture_output=True, check=True).stdout
        ours = np.frombuffer(out, np.uint8).reshape(oh, ow, c).astype(np.int32)
        x = torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1)[None]
        ref = F.interpolate(x, size=(oh, ow), mode=mode, antialias=True, align_corners=False)
        ref = ref[0].permute(1, 2, 0).round().clamp(0, 255).numpy().astype(np.int32)
        d = np.abs(ours - ref).max()
        ok = d <= 1
        fails += not ok
        print(f"{mode} {w}x{h}x{c} -> {ow}x{oh}: max |diff| = {d} {'ok' if ok else 'FAIL'}")
sys.exit(1 if fails else 0)
