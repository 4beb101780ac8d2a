#!/usr/bin/env bash
# Build llama.cpp's reference tools (llama-perplexity, llama-quantize, llama-imatrix, llama-bench,
# llama-gguf-split)
# from the llama.cpp tree vendored in the llama-cpp-python sdist that the `quality` extra pins, with
# the same ggml flags as that runtime's wheel (Makefile: LLAMA_CMAKE_ARGS), so that the tools and
# the in-process runtime run the same code.
#
#   tools/build_llama_tools.sh [BUILD_DIR]        # default: ../llama-build next to the checkout
#
# The binaries land in BUILD_DIR/bin. Nothing is written inside the repository. The compile runs
# under `nice` (about 6-10 minutes on 2 cores).
set -euo pipefail

VERSION=0.3.36
REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=$(mkdir -p "${1:-$REPO/../llama-build}" && cd "${1:-$REPO/../llama-build}" && pwd)
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
JOBS=${JOBS:-$(nproc)}
# keep in sync with LLAMA_CMAKE_ARGS in the Makefile
GGML_FLAGS=(-DGGML_NATIVE=OFF)

SRC=$BUILD_DIR/src/llama_cpp_python-$VERSION
if [ ! -d "$SRC/vendor/llama.cpp" ]; then
    mkdir -p "$BUILD_DIR/src"
    "$PYTHON" -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$BUILD_DIR/src"
    tar -xzf "$BUILD_DIR/src/llama_cpp_python-$VERSION.tar.gz" -C "$BUILD_DIR/src"
fi

GENERATOR=()
command -v ninja >/dev/null && GENERATOR=(-G Ninja)

start=$(date +%s)
cmake -S "$SRC/vendor/llama.cpp" -B "$BUILD_DIR/build" "${GENERATOR[@]}" \
    -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON "${GGML_FLAGS[@]}" \
    -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=OFF -DLLAMA_OPENSSL=OFF
nice -n 10 cmake --build "$BUILD_DIR/build" -j "$JOBS" \
    --target llama-perplexity llama-quantize llama-imatrix llama-bench llama-gguf-split
ln -sfn build/bin "$BUILD_DIR/bin"  # llama.cpp puts binaries and shared libraries in <build>/bin
echo "built llama.cpp tools (llama-cpp-python $VERSION vendor tree) in $BUILD_DIR/bin in $(( $(date +%s) - start )) s"
