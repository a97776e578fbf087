"""The ONNX Runtime sessions of the CPU backend."""
from __future__ import annotations

import pytest

from fastdefocus.backends.cpu import PatchClassifier
from fastdefocus.stages.classify import MODEL_DIRS, load_model_info

pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("model", ["default", "fast"])
@pytest.mark.parametrize("backend", ["onnxruntime", "onnxruntime-int8"])
def test_sessions_do_not_spin_between_runs(model, backend):
    """Spinning ONNX Runtime workers would take the cores the estimator's native stages run on
    between the classifier's batches."""
    clf = PatchClassifier(load_model_info(MODEL_DIRS[model]), backend=backend)
    opts = clf._session.get_session_options()
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert opts.inter_op_num_threads == 1
