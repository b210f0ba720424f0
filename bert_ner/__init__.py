"""Code shared by train.py and infer.py: one module per concern."""
