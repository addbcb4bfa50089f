"""The training config: plain dataclasses whose defaults are Detectron's e2e Mask R-CNN R-50-FPN 1x recipe."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SolverConfig:
    """Optimisation: SGD with momentum, linear warm-up and step decay (DESIGN.md section 5)."""

    batch_size: int = 16  # effective images per optimiser step, over all processes and accumulation steps
    batch_size_per_gpu: int = 2  # images per forward pass of one process
    base_lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 1e-4  # not applied to biases and normalisation parameters
    warmup_iters: int = 1000
    warmup_factor: float = 1.0 / 3.0
    warmup_method: str = "linear"  # or "constant"
    max_iter: int = 90000
    steps: tuple[int, ...] = (60000, 80000)  # iterations where the learning rate drops by gamma
    gamma: float = 0.1
    clip_grad_norm: float = 0.0  # > 0: clip the gradient's total norm (off in the reference recipe)
    amp: bool = True  # mixed precision, on CUDA only


@dataclass
class DataConfig:
    """Where the data is and how training images are augmented."""

    train: str = "coco_2017_train"  # a split name or a COCO json
    train_images: str | None = None  # the image folder of a json given as `train`
    val: str | None = "coco_2017_val"  # evaluated every test_interval and at the end; None: no evaluation
    val_images: str | None = None
    data_root: str = "data/coco"
    scales: tuple[int, ...] = (800,)  # shorter side, one drawn per image (several: multi-scale training)
    max_size: int = 1333  # longer side at most (--max_image_size)
    flip: float = 0.5  # horizontal flip probability
    test_resize: tuple[str, int, int] = ("fit_max", 800, 1333)
    num_workers: int = 4


@dataclass
class TrainConfig:
    """A training run."""

    model: str = "resnet50_fpn"  # zoo name or class path
    model_overrides: dict = field(default_factory=dict)  # nested values merged into the model's config
    mean_pixel: tuple[float, float, float] | None = None  # BGR; None: the architecture's
    data: DataConfig = field(default_factory=DataConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    output_dir: str = "outputs/train"
    checkpoint_interval: int = 5000
    test_interval: int = 0  # 0: evaluate only at the end
    display_interval: int = 20
    seed: int = 0
    load_ckpt: str | None = None  # start from these weights (fine-tuning)
    # The backbone's ImageNet initialisation, as `segmentoly download --models resnet50` writes it; None
    # trains from scratch.
    load_backbone: str | None = "data/pretrained_models/converted/imagenet/detectron/resnet50.pth"
    max_test_images: int | None = None  # evaluate on at most this many validation images
