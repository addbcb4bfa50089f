# Everything runs inside .venv in the repository root. `make test` on a fresh machine (Python and pip only)
# creates it, installs the CPU build of PyTorch and the project, and runs the test suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test bench clean bundled-model

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# The CPU build of torch must come first: a bare `torch` requirement would pull the CUDA build.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install "torch==2.13.0"
	$(PY) -m pip install -e ".[test]"
	touch $(STAMP)

# The bundled shapes model on its sample images, through OpenVINO (exported to an IR on the first run).
demo: install
	$(PY) -m segmentoly.assets samples outputs/demo/samples
	$(PY) -m segmentoly.cli demo --images outputs/demo/samples --ckpt bundled --output outputs/demo/annotated \
		--show_scores openvino

test: install
	$(PY) -m pytest -q tests

bench: install
	$(PY) benchmarks/ops.py
	$(PY) benchmarks/latency.py --model resnet50_fpn --sizes 800x1344 480x640 --int8
	$(PY) benchmarks/latency.py --model light_fpn --sizes 480x640 --int8
	$(PY) benchmarks/train_throughput.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

# The bundled demo model, reproduced from scratch: synthetic data, training, packing into the package.
SHAPES := --classes circle rectangle triangle --image-size 112 160 --max-objects 6 --object-size 16 0.6
bundled-model: install
	$(PY) -m segmentoly.data.synthetic data/shapes --split-name train --num-images 2000 --seed 1 $(SHAPES)
	$(PY) -m segmentoly.data.synthetic data/shapes --split-name val --num-images 200 --seed 2 $(SHAPES)
	$(PY) -m segmentoly.cli train --load_cfg configs/shapes_light_fpn.yaml
	$(PY) tools/pack_checkpoint.py outputs/shapes_light_fpn/model_final.pth segmentoly/assets/shapes_light_fpn.pth
