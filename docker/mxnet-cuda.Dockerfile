# MXNet on the GPU: mxnet-cu112 1.9.1 is built against CUDA 11.2 and cuDNN 8, so it gets its own base image.
# Build:  docker build -f docker/mxnet-cuda.Dockerfile -t rosetta:mxnet-cuda .
# Run:    docker run --rm --gpus all -v "$PWD/reports:/rosetta/reports" rosetta:mxnet-cuda run --backend numpy,mxnet
FROM nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends software-properties-common \
 && add-apt-repository -y ppa:deadsnakes/ppa && apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv libgomp1 libquadmath0 \
 && rm -rf /var/lib/apt/lists/*
RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /rosetta
COPY pyproject.toml README.md ./
COPY rosetta rosetta
COPY tasks tasks
COPY backends backends
RUN pip install --no-cache-dir -e . \
 && rosetta setup --gpu numpy mxnet
ENTRYPOINT ["rosetta"]
CMD ["run", "--task", "classifier", "--backend", "numpy,mxnet", "--device", "all"]
