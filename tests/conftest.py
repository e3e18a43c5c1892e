import pytest


def _gpu_reason():
    try:
        from aibench import _cuda
    except ImportError:
        return "aibench._cuda is not built"
    if _cuda.device_count() == 0:
        return f"no CUDA GPU: {_cuda.cuda_unavailable_reason()}"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _gpu_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
