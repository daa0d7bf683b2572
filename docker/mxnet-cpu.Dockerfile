# MXNet 1.9.1 needs numpy < 1.24: the engine runs in the image's Python, MXNet in the virtual environment
# that `rosetta setup mxnet` builds under /rosetta/.envs/mxnet (numpy 1.23.5), as on a workstation.
# Build:  docker build -f docker/mxnet-cpu.Dockerfile -t rosetta:mxnet-cpu .
# Run:    docker run --rm -v "$PWD/reports:/rosetta/reports" rosetta:mxnet-cpu run --backend numpy,mxnet
FROM python:3.11-slim
# MXNet's wheel links against libgomp and libquadmath, which slim images lack.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 libquadmath0 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /rosetta
COPY pyproject.toml README.md ./
COPY rosetta rosetta
COPY tasks tasks
COPY backends backends
RUN pip install --no-cache-dir -e . \
 && rosetta setup numpy mxnet
ENTRYPOINT ["rosetta"]
CMD ["run", "--task", "classifier", "--backend", "numpy,mxnet", "--device", "cpu"]
