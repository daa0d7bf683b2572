# GPU machines: PyTorch, TensorFlow, JAX and Keras with CUDA 12, from the backends' requirements-gpu.txt
# where one exists (PyPI's torch==2.13.0 for Linux is already the CUDA build); PaddlePaddle's CUDA 12.6
# build, from Paddle's own index, in its own virtual environment (.envs/paddle).
# Build:  docker build -f docker/cuda.Dockerfile -t rosetta:cuda .
# Run:    docker run --rm --gpus all -v "$PWD/reports:/rosetta/reports" rosetta:cuda run --backend all
FROM nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04
RUN apt-get update && apt-get install -y --no-install-recommends software-properties-common \
 && add-apt-repository -y ppa:deadsnakes/ppa && apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv libgomp1 \
 && rm -rf /var/lib/apt/lists/*
RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /rosetta
COPY pyproject.toml README.md ./
COPY rosetta rosetta
COPY tasks tasks
COPY backends backends
RUN pip install --no-cache-dir -e . \
 && rosetta setup --gpu numpy torch tensorflow jax keras paddle
ENTRYPOINT ["rosetta"]
CMD ["run", "--task", "classifier", "--backend", "all", "--device", "all"]
