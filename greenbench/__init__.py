"""greenbench: published Green-AI and quantization claims as executable, baselined tests.

The package is built in layers; a module imports only from its own layer's modules or from layers
below it, never upwards, and no two modules import each other (suite/test_structure.py holds this):

    pytest_plugin, cli                the entry points: pytest's and the shell's
    harness/                          the product: claims, baselines and the gate, report, the common checks
    nn/                               the ML workloads: networks, data, training, pruning, ONNX evaluation,
                                      the budget search, the model study, the FP16 benchmark
    analysis/      energy/            measuring: rate–distortion, fits, statistics, metrics | meters, carbon
    coding/                           indices to bytes: entropy and the static coder, the context coder,
                                      an ONNX graph's weights, the model container
    quantization/                     the quantizers, their registry and kernels
    core/                             validation and provenance, used by every layer

Why these rooms: the numerics (quantization, coding, analysis) never need a network, so they sit
below `nn`; the meters need nothing but the ground floor, so `energy` stands beside the numerics and
`nn` (the FP16 benchmark) and the harness (the report's carbon column) use it; the common quantizer
checks belong to the harness, not to `quantization`, because they run the coders and the container.

Public modules — their names are the package's face and keep their import paths:
`greenbench.claims` (`register_claim`, `Metric`), `greenbench.checks` (`check_quantizer`,
`FunctionQuantizer`, `parametrize_with_checks`), `greenbench.quantizers` (the quantizers,
`Quantizer`, `register_quantizer`), `greenbench.energy` (the meters, `measure`), and the pytest plugin.
Everything else is internal and may move.
"""

__version__ = "0.1.0"
