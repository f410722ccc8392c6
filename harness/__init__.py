"""audioldm2-harness: a pytest regression harness for the AudioLDM2 reconstruction chain.

waveform -> log-mel front-end -> VAE encode/decode -> vocoder -> waveform, stage by stage.
"""
from .frontend import get_frontend, list_frontends, register_frontend
from .variants import VaeVariant, get_vae, get_vocoder, register_vae, register_vocoder

__version__ = "0.1.0"
__all__ = ["register_frontend", "register_vae", "register_vocoder", "VaeVariant", "get_frontend",
           "get_vae", "get_vocoder", "list_frontends", "__version__"]
