"""The exception tree of `pulse` (the command line and local orchestration).

PulseError
 +-- LocalKafkaError     the local broker could not be built, started, reached or stopped
 +-- TopicError          the pipeline's topics could not be created or described
"""

from __future__ import annotations


class PulseError(Exception):
    """Root of every error raised by the `pulse` package; the CLI prints these without a traceback."""


class LocalKafkaError(PulseError):
    pass


class TopicError(PulseError):
    pass
