"""Face data: the canonical FaceRecord, readers for each source, SynFace, pre-tokenization."""

from talk2face.data.record import ATTRIBUTES, EditInfo, FaceRecord

__all__ = ["ATTRIBUTES", "EditInfo", "FaceRecord"]
