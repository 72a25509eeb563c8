#!/usr/bin/env bash
# Builds ecgnas with the `cuda` feature, on any Linux x86_64 machine (no GPU needed), and packs
# the binary with what a GPU machine needs to run the training benchmark:
#
#   bash scripts/build-cuda.sh            -> dist/ecgnas-cuda.tar.gz
#
# The CUDA toolkit comes from PyPI wheels into a build-only virtual environment
# ($ECGNAS_CUDA_ENV, default ~/.cache/ecgnas/cuda-env, about 1.2 GB). It stays at CUDA 13.0,
# the newest the 580 driver series accepts PTX from. The wheels carry no libcuda, so a
# link-time stub of the driver API is compiled here; at run time the driver's own
# libcuda.so.1 is used. CUDA_COMPUTE_CAP picks the GPU generation: 90 (H100/H200, the
# default) or 80 (A100; newer GPUs JIT its PTX).
#
# On the GPU machine: tar xzf ecgnas-cuda.tar.gz; point LD_LIBRARY_PATH at the folders of
# libcudart.so.13 and libcublas.so.13 (PyTorch's NVIDIA wheels have them); then
#   ./ecgnas bench train --device cuda --pytorch python3
#   ./ecgnas search --device cuda --task cinc2017 ...
set -euo pipefail
cd "$(dirname "$0")/.."

ENV_DIR=${ECGNAS_CUDA_ENV:-$HOME/.cache/ecgnas/cuda-env}
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/ecgnas/target-cuda}

[ -x "$ENV_DIR/bin/python" ] || python3 -m venv "$ENV_DIR"
"$ENV_DIR/bin/pip" install -q --disable-pip-version-check \
  nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88 \
  nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cuda-nvrtc==13.0.88 \
  nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35
CUDA=$("$ENV_DIR/bin/python" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')

# The linker looks for unversioned library names, and candle's kernel build for lib64.
for lib in cublas cublasLt curand nvrtc cudart; do
  versioned=$(cd "$CUDA/lib" && ls "lib$lib.so."* | head -n 1)
  ln -sf "$versioned" "$CUDA/lib/lib$lib.so"
done
ln -sfn lib "$CUDA/lib64"

# A stub libcuda.so exporting the driver functions cudarc links against.
STUB="$CUDA/lib/stubs/libcuda.so"
if [ ! -f "$STUB" ]; then
  cargo fetch --quiet
  decls=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -path '*/cudarc-*/src/driver/sys/mod.rs' | sort | tail -n 1)
  [ -n "$decls" ] || { echo "build-cuda: cudarc's driver declarations not found" >&2; exit 1; }
  mkdir -p "$(dirname "$STUB")"
  grep -oE 'pub unsafe fn cu[A-Za-z0-9_]+' "$decls" | awk '{print $4}' | sort -u \
    | sed 's/.*/void &(void) {}/' > "$CUDA/lib/stubs/libcuda_stub.c"
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$STUB" "$CUDA/lib/stubs/libcuda_stub.c"
fi

export PATH="$CUDA/bin:$PATH" CUDA_HOME="$CUDA" CUDA_PATH="$CUDA" CUDA_ROOT="$CUDA"
export LIBRARY_PATH="$CUDA/lib:$CUDA/lib/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}"
nvcc --version | tail -n 1
cargo build --release -p ecgnas --features cuda --bin ecgnas

# Pack: the stripped binary (the GPU machine has the CUDA libraries) and the benchmark's
# PyTorch side.
mkdir -p dist/ecgnas-cuda
cp "$CARGO_TARGET_DIR/release/ecgnas" dist/ecgnas-cuda/ecgnas
strip dist/ecgnas-cuda/ecgnas
mkdir -p dist/ecgnas-cuda/scripts
cp scripts/bench_train.py dist/ecgnas-cuda/scripts/
tar -C dist -czf dist/ecgnas-cuda.tar.gz ecgnas-cuda
echo "build-cuda: dist/ecgnas-cuda.tar.gz ($(du -h dist/ecgnas-cuda.tar.gz | cut -f1)); needs at run time:"
ldd dist/ecgnas-cuda/ecgnas | grep 'not found' || true
