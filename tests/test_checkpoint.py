"""The checkpoint format: round trips, damaged files, and weights that do not fit."""

import pickle

import pytest
import torch

from segmentoly.rcnn.model_zoo import ARCHITECTURES
from segmentoly.weights.checkpoint import CheckpointError, build_model, read_checkpoint, save_checkpoint

NAMES = ["background", "circle", "square"]


@pytest.fixture
def light_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = ARCHITECTURES["light_fpn"](3)
    path = save_checkpoint(tmp_path / "light.pth", model, class_names=NAMES, preprocessing={"resize": ["size", 64, 64]})
    return model, path


def test_round_trip_restores_architecture_config_and_weights(light_checkpoint):
    model, path = light_checkpoint
    state = read_checkpoint(path)
    assert state["class_names"] == NAMES and state["preprocessing"] == {"resize": ["size", 64, 64]}
    rebuilt = build_model(state)
    assert type(rebuilt) is type(model) and rebuilt.config == model.config
    for name, value in model.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[name], value), name


def test_truncated_checkpoint_is_reported(light_checkpoint, tmp_path):
    _, path = light_checkpoint
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"truncated\.pth: cannot read the checkpoint"):
        read_checkpoint(truncated)
    with pytest.raises(CheckpointError, match="checkpoint file not found"):
        read_checkpoint(tmp_path / "missing.pth")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickled_code_never_runs(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"format": "segmentoly-checkpoint", "model": Exploit()}))
    with pytest.raises(CheckpointError, match="cannot read the checkpoint"):
        read_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


def test_other_files_are_not_checkpoints(tmp_path):
    path = tmp_path / "plain.pth"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(CheckpointError, match="not a segmentoly checkpoint"):
        read_checkpoint(path)


def test_architecture_mismatch_names_the_problem(light_checkpoint):
    _, path = light_checkpoint
    state = read_checkpoint(path)
    with pytest.raises(CheckpointError, match="holds weights of architecture 'light_fpn', but --model asks for"):
        build_model(state, architecture="resnet50_fpn")


def test_weights_that_do_not_fit_are_listed(light_checkpoint):
    _, path = light_checkpoint
    state = read_checkpoint(path)
    weights = dict(state["model"])
    weights["box_predictor.cls_score.weight"] = torch.zeros(7, 256)  # another class count
    del weights["rpn.head.conv.bias"]
    weights["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as error:
        build_model(state | {"model": weights})
    message = str(error.value)
    assert "missing: rpn.head.conv.bias" in message
    assert "unexpected: extra.weight" in message
    assert "with another shape: box_predictor.cls_score.weight (7, 256) (model: (3, 256))" in message


def test_save_is_atomic(light_checkpoint, monkeypatch):
    model, path = light_checkpoint
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, class_names=NAMES)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]
