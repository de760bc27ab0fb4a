"""Encoders (image → embedding), decoders (embedding → image) and projection heads."""
from ml.models.decoders import build_decoder
from ml.models.encoders import ENCODERS, build_encoder, resolve_encoder
from ml.models.heads import ProjectionHead

__all__ = ["ENCODERS", "ProjectionHead", "build_decoder", "build_encoder", "resolve_encoder"]
