"""A fake `cupy` backed by numpy, on the simulated GPU of device.py.

What it follows from CuPy's documentation (docs.cupy.dev, API reference 13.x):
- `cupy.ndarray` refuses implicit conversion to numpy (`__array__` raises TypeError:
  "Implicit conversion to a NumPy array is not allowed"); `.get(stream=None)` copies to
  the host, synchronously unless a stream is given; `.set(arr, stream=None)` copies a host
  array of the same shape and dtype in; `.data.ptr` is the device address.
- `cupy.cuda.Event(block=False, disable_timing=False)`, `.record(stream=None)` on the
  current stream, `.synchronize()`; `cupy.cuda.get_elapsed_time(start, end)` in
  milliseconds (cudaEventElapsedTime: cudaErrorNotReady before the end event completed).
- `cupy.cuda.Stream(null=False, non_blocking=False)`, `.ptr` (0 for the null stream),
  `.synchronize()`; `cupy.cuda.Device(i).use()`, `.synchronize()`.
- `cupy.cuda.runtime.getDeviceCount()`, `getDeviceProperties(i)` (a dict; `name` is
  bytes), `memGetInfo()` -> (free, total) of the current device,
  `memcpyAsync(dst, src, size, kind, stream)` on addresses (cudaMemcpyKind: 0 host to
  host, 1 host to device, 2 device to host, 3 device to device, 4 default);
  `cupy.cuda.alloc_pinned_memory(size)`: page-locked host memory with the buffer protocol.
- `cupy.matmul(a, b, out=None)` (cuBLAS GEMM: fp16 inputs accumulate in fp32, output
  rounded once); `cupy._core._routines_linalg.set_compute_type` (COMPUTE_TYPE_TF32).
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import types

import numpy as np

from .device import CudaRuntimeError, SimulatedGpus


def _module(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)  # importlib.util.find_spec works
    return module


def _unwrap(value):
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, tuple):
        return tuple(_unwrap(v) for v in value)
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


class _Memory:
    """cupy.cuda.MemoryPointer, as far as the suites read it."""

    def __init__(self, ptr: int):
        self.ptr = ptr


class ndarray:  # noqa: N801 - CuPy's name
    """A device array: a numpy array living in an allocation of the simulated GPU."""

    def __init__(self, array: np.ndarray, gpus: SimulatedGpus):
        self._a, self._gpus = array, gpus

    # --- what it is ---
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    size = property(lambda self: self._a.size)
    ndim = property(lambda self: self._a.ndim)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    data = property(lambda self: _Memory(self._a.ctypes.data))
    T = property(lambda self: self._wrap(self._a.T))

    def _wrap(self, result):
        return ndarray(result, self._gpus) if isinstance(result, np.ndarray) else result

    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a "
                        "NumPy array explicitly.")

    def __repr__(self):
        return f"fake_cupy.ndarray({self._a!r})"

    def __len__(self):
        return len(self._a)

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __bool__(self):
        return bool(self._a)

    def item(self):
        return self._a.item()

    # --- host copies ---
    def get(self, stream=None, order="C", out=None):
        if stream is None:
            self._gpus.synchronize("ndarray.get")  # a synchronous cudaMemcpy
        return np.array(self._a, order=order)

    def set(self, arr, stream=None):
        arr = np.asarray(arr)
        if arr.shape != self.shape:
            raise ValueError(f"Shape mismatch. Old shape: {self.shape}, new shape: {arr.shape}")
        if arr.dtype != self.dtype:
            raise TypeError(f"{arr.dtype} array cannot be set to {self.dtype} array")
        self._a[...] = arr
        self._gpus.wrote()
        self._gpus.kernel("copy", f"set {self.nbytes} bytes")

    def fill(self, value):
        self._a.fill(value)
        self._gpus.wrote()
        self._gpus.kernel("fill", f"{self.nbytes} bytes of {self.dtype}")

    def __dlpack__(self, **kwargs):
        return self._a.__dlpack__(**{k: v for k, v in kwargs.items() if k != "stream"})

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()

    # --- numpy-like methods (elementwise kernels: not timed by any test) ---
    def __getitem__(self, index):
        return self._wrap(self._a[_unwrap(index)])

    def __setitem__(self, index, value):
        self._a[_unwrap(index)] = _unwrap(value)
        self._gpus.wrote()

    def astype(self, dtype, copy=True):
        return self._wrap(self._a.astype(dtype, copy=copy))

    def view(self, dtype):
        return self._wrap(self._a.view(dtype))

    def reshape(self, *shape):
        return self._wrap(self._a.reshape(*shape))

    def ravel(self):
        return self._wrap(self._a.ravel())

    def copy(self):
        return self._wrap(self._a.copy())

    def sum(self, *args, **kwargs):
        return self._wrap(np.asarray(self._a.sum(*args, **kwargs)))

    def max(self, *args, **kwargs):
        return self._wrap(np.asarray(self._a.max(*args, **kwargs)))

    def min(self, *args, **kwargs):
        return self._wrap(np.asarray(self._a.min(*args, **kwargs)))


def _binary(name):
    def op(self, other):
        return self._wrap(getattr(self._a, name)(_unwrap(other)))
    return op


def _inplace(name):
    def op(self, other):
        getattr(self._a, name)(_unwrap(other))
        self._gpus.wrote()
        return self
    return op


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "lshift", "rshift", "and", "or", "xor",
              "radd", "rsub", "rmul", "rtruediv", "lt", "le", "gt", "ge", "eq", "ne"):
    setattr(ndarray, f"__{_name}__", _binary(f"__{_name}__"))
for _name in ("iadd", "isub", "imul", "itruediv", "ilshift", "irshift"):
    setattr(ndarray, f"__{_name}__", _inplace(f"__{_name}__"))
ndarray.__neg__ = lambda self: self._wrap(-self._a)
ndarray.__abs__ = lambda self: self._wrap(np.abs(self._a))


class Event:
    def __init__(self, block=False, disable_timing=False, interprocess=False, *, _gpus):
        self._gpus, self.disable_timing = _gpus, disable_timing
        self.time_ns = None  # the device clock where the event sits
        self.completed = False

    def record(self, stream=None):
        self.time_ns = self._gpus.clock_ns
        self.completed = False
        self._gpus.pending_events.append(self)
        self._gpus.log.append(("event", "record"))

    def synchronize(self):
        # Waiting for an event waits for everything enqueued before it (in-order streams).
        pending = self._gpus.pending_events
        upto = next((i + 1 for i, e in enumerate(pending) if e is self), 0)
        self._gpus.synchronize("event", upto)

    @property
    def done(self):
        return self.completed


class Stream:
    def __init__(self, null=False, non_blocking=False, ptds=False, *, _gpus, _ptr=None):
        self._gpus, self.non_blocking = _gpus, non_blocking
        self.ptr = 0 if null else (_ptr or id(self))

    def synchronize(self):
        self._gpus.synchronize(f"stream {'null' if self.ptr == 0 else 'non-blocking'}")

    def use(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Device:
    def __init__(self, device=None, *, _gpus):
        self._gpus = _gpus
        self.id = _gpus.current if device is None else int(device)
        if not 0 <= self.id < len(_gpus.specs):
            raise CudaRuntimeError("cudaErrorInvalidDevice: invalid device ordinal")

    def use(self):
        self._gpus.current = self.id

    def synchronize(self):
        self._gpus.synchronize("device")

    def __enter__(self):
        self._previous = self._gpus.current
        self._gpus.current = self.id
        return self

    def __exit__(self, *exc):
        self._gpus.current = self._previous
        return False


class _PinnedMemory(np.ndarray):
    """cupy.cuda.PinnedMemoryPointer as the memory suite uses it: `.ptr`, and a buffer
    numpy.frombuffer reads."""

    ptr = property(lambda self: self.ctypes.data)


class _MemoryPool:
    def free_all_blocks(self):
        pass

    def used_bytes(self):
        return 0


def build(gpus: SimulatedGpus, nccl_module: types.ModuleType) -> dict[str, types.ModuleType]:
    """The fake cupy and its submodules, as sys.modules entries."""
    cupy = _module("cupy")
    cuda = _module("cupy.cuda")
    runtime = _module("cupy.cuda.runtime")
    core = _module("cupy._core")
    linalg = _module("cupy._core._routines_linalg")
    cupy.__version__ = "13.6.0"
    cupy.ndarray = ndarray
    for name in ("float16", "float32", "float64", "uint8", "uint16", "uint32", "int8", "int32", "int64",
                 "bool_", "isfinite", "isnan"):
        setattr(cupy, name, getattr(np, name))
    cupy.isfinite = lambda a: ndarray(np.isfinite(_unwrap(a)), gpus)
    cupy.isnan = lambda a: ndarray(np.isnan(_unwrap(a)), gpus)
    cupy.abs = lambda a: ndarray(np.abs(_unwrap(a)), gpus)
    cupy.max = lambda a, *args, **kw: ndarray(np.asarray(np.max(_unwrap(a), *args, **kw)), gpus)

    def empty(shape, dtype=np.float64, order="C"):
        dtype = np.dtype(dtype)
        count = int(np.prod(shape)) if np.ndim(shape) else int(shape)
        raw = gpus.allocate(count * dtype.itemsize)
        array = raw[: count * dtype.itemsize].view(dtype).reshape(shape)
        return ndarray(array, gpus)

    def asarray(a, dtype=None):
        if isinstance(a, ndarray):
            return a if dtype is None else a.astype(dtype)
        host = np.asarray(a, dtype=dtype)
        out = empty(host.shape, host.dtype)
        out._a[...] = host
        return out

    def zeros(shape, dtype=np.float64):
        out = empty(shape, dtype)
        out._a[...] = 0
        return out

    def ascontiguousarray(a):
        out = empty(a.shape, a.dtype)
        out._a[...] = a._a
        return out

    compute_type = {"float32": 0}  # COMPUTE_TYPE_DEFAULT

    def matmul(a, b, out=None):
        if not (isinstance(a, ndarray) and isinstance(b, ndarray)):
            raise TypeError("cupy.matmul takes cupy.ndarray operands")
        if a.shape[-1] != b.shape[0]:
            raise ValueError(f"matmul: shape mismatch {a.shape} @ {b.shape}")
        x, y = a._a.astype(np.float64), b._a.astype(np.float64)
        if a.dtype == np.float32 and compute_type["float32"] == linalg.COMPUTE_TYPE_TF32:
            x, y = _round_tf32(a._a).astype(np.float64), _round_tf32(b._a).astype(np.float64)
        result = (x @ y).astype(np.result_type(a.dtype, b.dtype))
        gpus.kernel("gemm", f"cupy.matmul {a.shape}x{b.shape}")
        if out is None:
            return asarray(result)
        if out.shape != result.shape:
            raise ValueError(f"Output shape mismatch: {out.shape} vs {result.shape}")
        out._a[...] = result
        gpus.wrote()
        return out

    cupy.empty, cupy.asarray, cupy.array, cupy.zeros = empty, asarray, asarray, zeros
    cupy.ascontiguousarray, cupy.matmul = ascontiguousarray, matmul
    cupy.ix_ = lambda *idx: tuple(ndarray(i, gpus) for i in np.ix_(*(_unwrap(i) for i in idx)))
    cupy.asnumpy = lambda a, stream=None: a.get(stream=stream) if isinstance(a, ndarray) else np.asarray(a)
    pool = _MemoryPool()
    cupy.get_default_memory_pool = lambda: pool

    # cupy._core._routines_linalg: the compute type of float32 matmuls.
    linalg.COMPUTE_TYPE_DEFAULT, linalg.COMPUTE_TYPE_PEDANTIC, linalg.COMPUTE_TYPE_TF32 = 0, 1, 5
    linalg.get_compute_type = lambda dtype: compute_type[np.dtype(dtype).name]
    linalg.set_compute_type = lambda dtype, value: compute_type.__setitem__(np.dtype(dtype).name, value)
    core._routines_linalg = linalg
    cupy._core = core

    # cupy.cuda and its runtime
    null_stream = Stream(null=True, _gpus=gpus)
    cuda.Event = lambda *a, **kw: Event(*a, _gpus=gpus, **kw)
    cuda.Stream = lambda *a, **kw: Stream(*a, _gpus=gpus, **kw)
    cuda.Stream.null = null_stream
    cuda.Device = lambda *a, **kw: Device(*a, _gpus=gpus, **kw)
    cuda.get_current_stream = lambda: null_stream

    def get_elapsed_time(start, end):
        for event in (start, end):
            if event.time_ns is None:
                raise CudaRuntimeError("cudaErrorInvalidResourceHandle: invalid resource handle")
            if event.disable_timing:
                raise CudaRuntimeError("cudaErrorInvalidResourceHandle: the event was created with disable_timing")
        if not end.completed:
            raise CudaRuntimeError("cudaErrorNotReady: device not ready (the end event has not completed)")
        return (end.time_ns - start.time_ns) / 1e6

    cuda.get_elapsed_time = get_elapsed_time
    runtime.CUDARuntimeError = CudaRuntimeError
    runtime.getDeviceCount = lambda: len(gpus.specs)
    runtime.getDevice = lambda: gpus.current
    runtime.setDevice = lambda i: setattr(gpus, "current", int(i))
    runtime.runtimeGetVersion = lambda: 12080
    runtime.driverGetVersion = lambda: 12080
    runtime.deviceSynchronize = lambda: gpus.synchronize("cudaDeviceSynchronize")

    def get_device_properties(i):
        spec = gpus.specs[i]
        return {"name": spec.name.encode(), "major": spec.major, "minor": spec.minor,
                "multiProcessorCount": spec.multiprocessors, "l2CacheSize": spec.l2_cache_bytes,
                "totalGlobalMem": spec.total_memory_bytes}

    runtime.getDeviceProperties = get_device_properties

    def memcpy_async(dst, src, size, kind, stream):
        if kind not in (0, 1, 2, 3, 4):
            raise CudaRuntimeError(f"cudaErrorInvalidMemcpyDirection: invalid copy direction ({kind})")
        gpus.view(dst, size, np.uint8)[...] = gpus.view(src, size, np.uint8)
        gpus.wrote()
        gpus.kernel("copy", f"cudaMemcpyAsync kind {kind}, {size} bytes")

    runtime.memcpyAsync = memcpy_async
    # Pinned host memory is host memory the device reaches by address: in the double, an
    # allocation of its memory map like any other.
    cuda.alloc_pinned_memory = lambda size: gpus.allocate(size)
    runtime.memGetInfo = lambda: (gpus.specs[gpus.current].free_memory_bytes,
                                  gpus.specs[gpus.current].total_memory_bytes)
    # cudaMemcpyAsync and pinned host memory (the memory suite): a device-side pointer must
    # be in a live allocation, a host-side one in pinned memory; the copy takes the told
    # "copy" time.
    runtime.memcpyHostToHost, runtime.memcpyHostToDevice = 0, 1
    runtime.memcpyDeviceToHost, runtime.memcpyDeviceToDevice = 2, 3
    pinned: dict[int, _PinnedMemory] = {}

    def alloc_pinned_memory(size):
        mem = np.zeros(max(int(size), 1), dtype=np.uint8).view(_PinnedMemory)
        pinned[mem.ptr] = mem
        return mem

    def check_side(ptr, size, on_device):
        if on_device:
            gpus.view(ptr, size, np.uint8)  # raises for a pointer in no live allocation
        elif not any(base <= ptr and ptr + size <= base + m.nbytes for base, m in pinned.items()):
            raise CudaRuntimeError(f"the double takes host copies from pinned memory only ({size} bytes at {ptr:#x})")

    def memcpy_async(dst, src, size, kind, stream):
        check_side(src, size, kind in (2, 3))
        check_side(dst, size, kind in (1, 3))
        ctypes.memmove(dst, src, size)
        gpus.kernel("copy", f"memcpyAsync kind {kind}, {size} bytes")
        gpus.wrote()

    runtime.memcpyAsync = memcpy_async
    cuda.alloc_pinned_memory = alloc_pinned_memory
    cuda.runtime = runtime
    cuda.nccl = nccl_module
    cupy.cuda = cuda
    return {"cupy": cupy, "cupy.cuda": cuda, "cupy.cuda.runtime": runtime, "cupy.cuda.nccl": nccl_module,
            "cupy._core": core, "cupy._core._routines_linalg": linalg}


def _round_tf32(a: np.ndarray) -> np.ndarray:
    """fp32 rounded to nearest-even at tf32 precision (10 explicit mantissa bits)."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).copy()
    finite = (bits & 0x7F800000) != 0x7F800000
    rounded = (bits + 0xFFF + ((bits >> 13) & 1)) & ~np.uint32(0x1FFF)
    return np.where(finite, rounded, bits).astype(np.uint32).view(np.float32)
