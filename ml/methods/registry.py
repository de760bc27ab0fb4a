"""The training classes, one small registered class each: name → class (imports torch)."""
from ml.methods.autoencoders import Autoencoder, ContractiveAutoencoder, DenoisingAutoencoder, SparseAutoencoder
from ml.methods.base import Method
from ml.methods.byol import BYOL
from ml.methods.moco import MoCo
from ml.methods.simclr import SimCLR

METHODS: dict[str, type[Method]] = {
    method.name: method for method in (Autoencoder, DenoisingAutoencoder, SparseAutoencoder, ContractiveAutoencoder, SimCLR, MoCo, BYOL)
}

__all__ = ["METHODS", "Method"]
