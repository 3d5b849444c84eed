"""The product: claims and their records (`claims`), schema-checked, machine-tagged baselines, their
acknowledgements and the regression gate (`baselines`), the run history and its windowed gate
(`history`), what CI dashboards read (`exports`), the claims table, report and plots (`report`), and the common checks
every quantizer — the suite's own and a user's — is held to (`checks`), and the GPU tier's environment
probe and stage budget (`gpuprobe`).

The pytest plugin (`greenbench.pytest_plugin`) and the command line (`greenbench.cli`) sit above it.
"""
