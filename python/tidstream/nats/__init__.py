"""Everything that talks to NATS: connection options, an embedded server, stream set-up,
and the Bytewax JetStream source and sink. The only package that imports nats-py."""

from .server import EmbeddedServer, find_nats_server, free_port

__all__ = ["EmbeddedServer", "find_nats_server", "free_port"]
