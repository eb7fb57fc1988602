"""The model of a service's settings: its ``protocol``'s wire format over its ``client``'s transport."""

from __future__ import annotations

from react_eval.model.client import ModelClient, WireFormat
from react_eval.model.completion import ChatCompletions
from react_eval.model.config import ModelConfig
from react_eval.model.protocol import Model
from react_eval.model.responses import Responses
from react_eval.model.text_completions import TextCompletions
from react_eval.model.transport import HTTPTransport, Transport


def build_model(config: ModelConfig) -> Model:
    """``client: fast`` (the default) sends without the openai SDK; ``client:
    openai`` sends through it (imported only then)."""
    wire: WireFormat
    if config.protocol == "responses":
        wire = Responses(config)
    elif config.protocol == "completions":
        wire = TextCompletions(config)
    else:
        wire = ChatCompletions(config)
    transport: Transport
    # the SDK posts only to its own paths: a full endpoint URL (NEL's url) goes through the fast transport
    if config.client == "openai" and config.endpoint is None and config.protocol != "completions":
        from react_eval.model.sdk import SDKTransport  # the SDK takes most of a second to import

        transport = SDKTransport(config)
    else:
        transport = HTTPTransport(config)
    return ModelClient(config, wire, transport)
