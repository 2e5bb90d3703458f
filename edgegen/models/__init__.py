"""Models: a registry with no Azure (content-addressed, versioned), Azure ML's deployed layout, conversion to
ONNX, profiling and packaging into an inference module.

Dependency rule: uses ``edgegen.generator`` (and ``edgegen.errors``) only. ``modelpath`` uses nothing of ours at
all: it is copied into module folders. Heavy libraries (scikit-learn, skl2onnx, onnxruntime, numpy) are imported
inside the functions that need them, from the optional ``models`` extra.
"""

__all__: list[str] = []
