"""Turning quantization indices into bytes and back, exactly, with every format versioned and checksummed.

- `entropy`: the rate (zeroth-order entropy H, CR = 32/H, RE; thesis Eqs. 2.31, 3.1–3.2), the static
  range coder's stream ("GBRC") and the CRC-32 framing every format shares.
- `context`: the container's coder ("GBCC"): DeepCABAC's binarization under adaptive, context-chosen
  binary models, fresh per tensor.
- `weights`: an ONNX graph's weights — which initializers they are, reading, replacing, quantizing.
- `container`: the model container ("GBNNC"): the graph without its weights, the quantizer that made
  them, and their context-coded indices.
"""
