"""The model of a service's settings: its ``protocol``'s wire format over its ``client``'s transport."""

from __future__ import annotations

from react_eval.model.client import ModelClient
from react_eval.model.completion import ChatCompletions
from react_eval.model.config import ModelConfig
from react_eval.model.protocol import Model
from react_eval.model.responses import Responses
from react_eval.model.transport import HTTPTransport, Transport


def build_model(config: ModelConfig) -> Model:
    """``client: fast`` (the default) sends without the openai SDK; ``client:
    openai`` sends through it (imported only then)."""
    wire = Responses(config) if config.protocol == "responses" else ChatCompletions(config)
    transport: Transport
    if config.client == "openai":
        from react_eval.model.sdk import SDKTransport  # the SDK takes most of a second to import

        transport = SDKTransport(config)
    else:
        transport = HTTPTransport(config)
    return ModelClient(config, wire, transport)
