"""Training methods, one small registered class each: name → class."""
from ml.methods.autoencoders import Autoencoder, ContractiveAutoencoder, DenoisingAutoencoder, SparseAutoencoder
from ml.methods.base import Method
from ml.methods.simclr import SimCLR

METHODS: dict[str, type[Method]] = {
    method.name: method for method in (Autoencoder, DenoisingAutoencoder, SparseAutoencoder, ContractiveAutoencoder, SimCLR)
}

__all__ = ["METHODS", "Method"]
