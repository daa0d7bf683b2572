# The shared environment on the CPU: numpy, PyTorch, TensorFlow, JAX and Keras in one interpreter;
# PaddlePaddle in its own virtual environment under /rosetta/.envs/paddle (it pins opt_einsum==3.3.0).
# Build from the project root:  docker build -f docker/cpu.Dockerfile -t rosetta:cpu .
# Run:  docker run --rm -v "$PWD/reports:/rosetta/reports" rosetta:cpu run --task classifier --backend all
FROM python:3.11-slim
# PaddlePaddle's wheel links against the system's libgomp, which slim images lack.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*
WORKDIR /rosetta
COPY pyproject.toml README.md ./
COPY rosetta rosetta
COPY tasks tasks
COPY backends backends
# The same requirements files as everywhere else, read by `rosetta setup` (torch first).
RUN pip install --no-cache-dir -e . \
 && rosetta setup numpy torch tensorflow jax keras paddle
ENTRYPOINT ["rosetta"]
CMD ["run", "--task", "classifier", "--backend", "all", "--device", "cpu"]
