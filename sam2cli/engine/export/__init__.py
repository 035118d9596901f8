"""`sam2 export`: the model as ONNX graphs, self-checked. A job: it imports the engine library,
never another job."""
