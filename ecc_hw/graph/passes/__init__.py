"""The converter's graph passes, one module each, each a pure function ``Graph -> Graph`` with one contract.

Each module declares the ONNX ops it handles in ``HANDLES`` (``ecc_hw.graph.pipeline`` builds the list of
supported ops from them) and raises a one-line ``UserError`` naming the node for the variants it
cannot handle. ``ecc_hw.graph.pipeline.PASSES`` runs them in order.
"""
