"""SynFace: the embedded procedural face data set with exact ground truth (see DESIGN.md)."""
