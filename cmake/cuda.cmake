# aibench._cuda: the optional CUDA module (cuBLASLt GEMM, aibench's own kernels).
#
# Included by the top-level CMakeLists.txt unless AIBENCH_CUDA is OFF.
#   AIBENCH_CUDA=AUTO  build it when nvcc and cuBLASLt are found, else say why and skip.
#   AIBENCH_CUDA=ON    the same, but a missing piece is a configure error.
# cuBLASLt comes from the CUDA toolkit when it has it, else from the nvidia-cublas pip wheel
# (`pip install nvidia-cublas`: site-packages/nvidia/cu13/{include,lib}; older wheels used
# nvidia/cublas/{include,lib}). cudart is linked statically, so the module imports on a
# machine without a driver and the first CUDA call reports the problem.
# AIBENCH_CUDA_ARCHITECTURES (default 80;90) picks the GPU code embedded; add 90a or 100
# yourself (e.g. -DAIBENCH_CUDA_ARCHITECTURES="80;90;100").

string(TOUPPER "${AIBENCH_CUDA}" _aibench_cuda_mode)
if(_aibench_cuda_mode MATCHES "^(OFF|FALSE|NO|0)$")
  return()
elseif(_aibench_cuda_mode MATCHES "^(ON|TRUE|YES|1)$")
  set(_aibench_cuda_mode ON)
elseif(NOT _aibench_cuda_mode STREQUAL "AUTO")
  message(FATAL_ERROR "aibench: AIBENCH_CUDA must be AUTO, ON or OFF, not '${AIBENCH_CUDA}'")
endif()

# Reports a missing piece: fatal under ON, a status line under AUTO. The caller returns.
macro(_aibench_cuda_missing what how)
  if(_aibench_cuda_mode STREQUAL "ON")
    message(FATAL_ERROR "aibench: AIBENCH_CUDA=ON but ${what}. ${how}")
  else()
    message(STATUS "aibench: CUDA module not built: ${what} (${how})")
  endif()
endmacro()

# --- nvcc -------------------------------------------------------------------------------
include(CheckLanguage)
if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX})
  # GPU machines often have nvcc in the toolkit's bin/ without it being on PATH.
  find_program(AIBENCH_NVCC nvcc
    HINTS ENV CUDA_HOME ENV CUDA_PATH PATH_SUFFIXES bin
    PATHS /usr/local/cuda/bin /opt/cuda/bin)
  if(AIBENCH_NVCC)
    set(CMAKE_CUDA_COMPILER "${AIBENCH_NVCC}")
  endif()
endif()
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  _aibench_cuda_missing("no CUDA compiler (nvcc) found"
    "install a CUDA toolkit and put nvcc on PATH, or set CUDACXX / -DCMAKE_CUDA_COMPILER=/path/to/nvcc")
  return()
endif()

set(AIBENCH_CUDA_ARCHITECTURES "80;90" CACHE STRING
  "GPU architectures for aibench._cuda (CMAKE_CUDA_ARCHITECTURES syntax; 80 minimum)")
# Explicit, so that enable_language() does not pick a default for us.
set(CMAKE_CUDA_ARCHITECTURES "${AIBENCH_CUDA_ARCHITECTURES}")
enable_language(CUDA)
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)

find_package(CUDAToolkit)
if(NOT CUDAToolkit_FOUND OR NOT TARGET CUDA::cudart_static)
  _aibench_cuda_missing("the CUDA toolkit of ${CMAKE_CUDA_COMPILER} (static cudart) was not found"
    "install a complete CUDA toolkit")
  return()
endif()

# --- cuBLASLt ---------------------------------------------------------------------------
set(_aibench_cublaslt_target "")
set(_aibench_cublaslt_dir "")
set(_aibench_cublaslt_source "")
set(_aibench_cublaslt_tried "")
if(TARGET CUDA::cublasLt)
  find_path(AIBENCH_TOOLKIT_CUBLASLT_H cublasLt.h HINTS ${CUDAToolkit_INCLUDE_DIRS} NO_DEFAULT_PATH)
  if(AIBENCH_TOOLKIT_CUBLASLT_H)
    set(_aibench_cublaslt_target CUDA::cublasLt)
    get_target_property(_aibench_lib CUDA::cublasLt IMPORTED_LOCATION)
    if(_aibench_lib)
      get_filename_component(_aibench_cublaslt_dir "${_aibench_lib}" DIRECTORY)
    endif()
    set(_aibench_cublaslt_source "CUDA toolkit ${CUDAToolkit_VERSION}")
  endif()
endif()
if(NOT _aibench_cublaslt_target)
  list(APPEND _aibench_cublaslt_tried "no cuBLASLt in the CUDA toolkit at ${CUDAToolkit_LIBRARY_DIR}")
endif()

if(NOT _aibench_cublaslt_target)
  # The pip wheel: list the directories holding its header and library.
  set(_aibench_find_wheel [=[
import importlib.metadata as md
for name in ("nvidia-cublas", "nvidia-cublas-cu13", "nvidia-cublas-cu12"):
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        continue
    dirs = []
    for f in dist.files or []:
        base = f.name
        if base == "cublasLt.h" or base.startswith("libcublasLt.so"):
            d = str(dist.locate_file(f).resolve().parent)
            if d not in dirs:
                dirs.append(d)
    if dirs:
        print(name + " " + dist.version)
        print(";".join(dirs))
        break
]=])
  set(_aibench_wheel_out "")
  if(Python_EXECUTABLE)
    execute_process(COMMAND "${Python_EXECUTABLE}" -c "${_aibench_find_wheel}"
      OUTPUT_VARIABLE _aibench_wheel_out ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
  endif()
  if(_aibench_wheel_out)
    string(REPLACE "\n" ";" _aibench_wheel_lines "${_aibench_wheel_out}")
    list(GET _aibench_wheel_lines 0 _aibench_wheel_name)
    list(SUBLIST _aibench_wheel_lines 1 -1 _aibench_wheel_dirs)
    find_path(AIBENCH_CUBLASLT_INCLUDE_DIR cublasLt.h HINTS ${_aibench_wheel_dirs} NO_DEFAULT_PATH)
    find_library(AIBENCH_CUBLASLT_LIBRARY
      NAMES libcublasLt.so.13 libcublasLt.so.12 cublasLt
      HINTS ${_aibench_wheel_dirs} NO_DEFAULT_PATH)
    if(AIBENCH_CUBLASLT_INCLUDE_DIR AND AIBENCH_CUBLASLT_LIBRARY)
      add_library(aibench_cublaslt SHARED IMPORTED)
      set_target_properties(aibench_cublaslt PROPERTIES
        IMPORTED_LOCATION "${AIBENCH_CUBLASLT_LIBRARY}"
        INTERFACE_INCLUDE_DIRECTORIES "${AIBENCH_CUBLASLT_INCLUDE_DIR}")
      set(_aibench_cublaslt_target aibench_cublaslt)
      get_filename_component(_aibench_cublaslt_dir "${AIBENCH_CUBLASLT_LIBRARY}" DIRECTORY)
      set(_aibench_cublaslt_source "pip wheel ${_aibench_wheel_name}")
    else()
      list(APPEND _aibench_cublaslt_tried
        "the ${_aibench_wheel_name} wheel lacks cublasLt.h or libcublasLt (looked in ${_aibench_wheel_dirs})")
    endif()
  else()
    list(APPEND _aibench_cublaslt_tried "no nvidia-cublas wheel installed for ${Python_EXECUTABLE}")
  endif()
endif()

if(NOT _aibench_cublaslt_target)
  list(JOIN _aibench_cublaslt_tried "; " _aibench_tried_text)
  _aibench_cuda_missing("cuBLASLt not found: ${_aibench_tried_text}"
    "pip install nvidia-cublas into the Python that builds aibench, or use a CUDA toolkit that includes cuBLAS")
  return()
endif()

# --- the module -------------------------------------------------------------------------
pybind11_add_module(_cuda MODULE
  csrc/cuda/module.cpp
  csrc/cuda/common.cpp
  csrc/cuda/timing.cpp
  csrc/cuda/cublaslt_gemm.cpp
  csrc/cuda/fill.cu
  csrc/cuda/flash_attn.cu
  csrc/cuda/mma_gemm.cu
  csrc/cuda/wgmma_gemm.cu)
target_include_directories(_cuda PRIVATE csrc)
target_link_libraries(_cuda PRIVATE CUDA::cudart_static ${_aibench_cublaslt_target})
set_target_properties(_cuda PROPERTIES
  CUDA_ARCHITECTURES "${AIBENCH_CUDA_ARCHITECTURES}"
  CUDA_STANDARD 17
  CUDA_STANDARD_REQUIRED ON
  CUDA_RUNTIME_LIBRARY Static
  # Installed next to the nvidia-cublas wheel (site-packages/aibench and
  # site-packages/nvidia/...), else where cuBLASLt was found at build time.
  INSTALL_RPATH "$ORIGIN/../nvidia/cu13/lib;$ORIGIN/../nvidia/cublas/lib;${_aibench_cublaslt_dir}"
  BUILD_RPATH "${_aibench_cublaslt_dir}")
target_compile_options(_cuda PRIVATE
  $<$<COMPILE_LANGUAGE:CXX>:-O3>
  $<$<COMPILE_LANGUAGE:CUDA>:-O3>)

# Recorded by build_info() for the system fingerprint. ';' would split the definition.
string(REPLACE ";" "," _aibench_archs_text "${AIBENCH_CUDA_ARCHITECTURES}")
target_compile_definitions(_cuda PRIVATE
  AIBENCH_CUDA_COMPILER="${CMAKE_CUDA_COMPILER_ID} ${CMAKE_CUDA_COMPILER_VERSION}"
  AIBENCH_CUDA_ARCHITECTURES="${_aibench_archs_text}"
  AIBENCH_CUBLASLT_SOURCE="${_aibench_cublaslt_source}")
# MmaGemm's Hopper path (wgmma + TMA, csrc/cuda/wgmma_gemm.cu) exists only in sm_90a code:
# the host side uses it when 90a is among the architectures (e.g. "80;90a").
if(AIBENCH_CUDA_ARCHITECTURES MATCHES "(^|;)90a(-real|-virtual)?(;|$)")
  target_compile_definitions(_cuda PRIVATE AIBENCH_HAVE_SM90A=1)
endif()
install(TARGETS _cuda DESTINATION aibench)
message(STATUS "aibench: building aibench._cuda (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, "
  "architectures ${AIBENCH_CUDA_ARCHITECTURES}, cuBLASLt from ${_aibench_cublaslt_source})")
