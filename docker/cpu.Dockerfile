# The shared environment on the CPU: numpy, PyTorch, TensorFlow, JAX and Keras in one interpreter.
# Build from the project root:  docker build -f docker/cpu.Dockerfile -t rosetta:cpu .
# Run:  docker run --rm -v "$PWD/reports:/rosetta/reports" rosetta:cpu run --task classifier --backend all
FROM python:3.11-slim
WORKDIR /rosetta
COPY pyproject.toml README.md ./
COPY rosetta rosetta
COPY tasks tasks
COPY backends backends
# The same requirements files as everywhere else, read by `rosetta setup` (torch first).
RUN pip install --no-cache-dir -e . \
 && rosetta setup numpy torch tensorflow jax keras
ENTRYPOINT ["rosetta"]
CMD ["run", "--task", "classifier", "--backend", "all", "--device", "cpu"]
