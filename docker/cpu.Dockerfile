# The CPU image: every backend the registry holds, each in its environment (`rosetta images` prints the
# build command with the backends filled in). Names no backend: `rosetta setup` installs what each needs,
# its system packages (apt-get) included.
FROM python:3.11-slim
ARG BACKENDS=all
WORKDIR /rosetta
COPY pyproject.toml README.md ./
COPY rosetta rosetta
COPY tasks tasks
COPY backends backends
RUN pip install --no-cache-dir -e . \
 && rosetta setup $BACKENDS \
 && rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["rosetta"]
CMD ["run", "--task", "classifier", "--backend", "all", "--device", "cpu"]
