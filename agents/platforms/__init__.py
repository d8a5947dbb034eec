"""Platform payloads to canonical events: one pure function per platform, no I/O.

Each mapper takes the parsed JSON a platform delivered and returns `Delivery`s: the platform's own
delivery id (the deduplication key for redeliveries) and the canonical events it carries. A payload that
cannot be mapped raises `PayloadError` naming the field, which the receiver answers with 400.
"""

from agents.platforms.common import Delivery, PayloadError
from agents.platforms.meta import map_meta
from agents.platforms.telegram import TelegramThreads, map_telegram
from agents.platforms.vk import map_vk

__all__ = ["Delivery", "PayloadError", "TelegramThreads", "map_meta", "map_telegram", "map_vk"]
