# A CUDA image: the GPU backends whose GPU build needs this CUDA base (an adapter's CUDA_IMAGE), plus the
# reference. `rosetta images` prints one build command per base, with BASE and BACKENDS filled in.
ARG BASE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04
FROM ${BASE}
ARG BACKENDS=all
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends software-properties-common \
 && add-apt-repository -y ppa:deadsnakes/ppa && apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv \
 && rm -rf /var/lib/apt/lists/*
RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /rosetta
COPY pyproject.toml README.md ./
COPY rosetta rosetta
COPY tasks tasks
COPY backends backends
RUN pip install --no-cache-dir -e . \
 && rosetta setup --gpu $BACKENDS \
 && rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["rosetta"]
CMD ["run", "--task", "classifier", "--backend", "all", "--device", "all"]
