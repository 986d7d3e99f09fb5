"""Graph networks (docs/arithmetic.md 5): ONNX to spiking layers with edges and max-pool nodes.

``pipeline.convert_graph(path)`` loads an ONNX file into the typed graph of ``ir``, runs the passes of
``passes`` and builds a ``network.GraphNetwork`` with ``edges``; ``forward.forward`` is the CNN's
float64 forward pass over it, and ``edge_map.EdgeMap`` applies one edge's geometry to float or
integer weights.
"""
