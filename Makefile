# mmseg-dupl: the two commands. Each sets up what it needs on a fresh machine
# (a local .venv with the OpenMMLab stack; mmcv's ops are built once and
# cached) and reuses it the second time.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp
PYTEST_ARGS ?=

.PHONY: demo test setup data pretrain clean-demo

$(STAMP): scripts/setup_env.sh setup.py
	bash scripts/setup_env.sh

setup: $(STAMP)

data/toy_voc/.done: $(STAMP)
	$(PY) tools/make_toy_voc.py --out data/toy_voc --overwrite
	touch $@

data: data/toy_voc/.done

# The toy backbone's pretrained weights (committed: checks them, or rebuilds
# them if the settings changed; `demo` does the same).
pretrain: $(STAMP)
	$(PY) tools/pretrain_toy_backbone.py

demo: $(STAMP) data/toy_voc/.done
	$(PY) tools/run_demo.py --data-root data/toy_voc --work-dir work_dirs/demo

# pytest-xdist: one worker per core (tests/conftest.py gives each worker, and
# the trainings it starts, one torch thread); --dist loadscope keeps a
# module's tests on one worker, so its module-scoped fixtures (most of them
# trainings) run once. PYTEST_WORKERS=0 runs everything in one process.
PYTEST_WORKERS ?= auto
test: $(STAMP)
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadscope tests $(PYTEST_ARGS)

clean-demo:
	rm -rf work_dirs/demo data/toy_voc
