import pytest

CUDA_DEVICE = 0


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


# CuPy on the test device and its compute capability, for the GPU test modules; each
# module provides its own `cuda` fixture (the aibench._cuda it needs, or a skip).
@pytest.fixture(scope="module")
def cp(cuda):
    cupy = pytest.importorskip("cupy")
    cupy.cuda.Device(CUDA_DEVICE).use()
    return cupy


@pytest.fixture(scope="module")
def capability(cuda):
    props = cuda.device_properties(CUDA_DEVICE)
    return props["major"] * 10 + props["minor"]
