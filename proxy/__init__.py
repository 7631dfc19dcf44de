"""variant-proxy: an OpenAI-compatible proxy that routes each request to the
local model variant that fits it best."""

__version__ = "0.1.0"
