"""FLOPs of a model's forward pass, counted by PyTorch's own ``FlopCounterMode``."""

from __future__ import annotations

import torch

from segmentoly.rcnn.mask_rcnn import MaskRCNN


def count_gflops(model: MaskRCNN, height: int, width: int) -> float:
    """GFLOPs of one eval-mode forward pass on a ``height x width`` input.

    PyTorch counts 2 FLOPs per multiply-add of convolutions and matrix products; the detection ops (proposal
    decoding, NMS, ROIAlign) are not counted and are a small part of the total. The ROI heads always run on
    their fixed number of ROIs (1,000 boxes, 100 masks for the COCO models), as the exported graph does.
    """
    from torch.utils.flop_counter import FlopCounterMode

    model = model.eval()
    image = torch.full((1, 3, height, width), 128.0)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(image)
    return counter.get_total_flops() / 1e9
