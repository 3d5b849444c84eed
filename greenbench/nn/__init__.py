"""The ML workloads the claims run: networks and their parameter/MAC counter (`models`), the data sets
(`data`), seed 000's training protocol with distillation (`training`), magnitude and structured
pruning (`pruning`), ONNX export and onnxruntime evaluation (`onnx_eval`), the thesis grid and the
screened budget search (`budget`), `greenbench model`'s study of a user's model (`modelstudy`), the
FP16 inference benchmark (`fp16`) and the coding benchmark's inputs and peers (`codingstudy`).
"""
