"""A Rasa tracker store that keeps live tracker objects in memory, writing through to a durable store.

Why: Rasa's stores rebuild the whole tracker from serialised events on every message (Rasa issues #3011,
#6334). In a 50-turn conversation that replay is most of a turn's cost, so latency grows with the length
of the conversation. Here the tracker a message ends with is the one the next message starts with; the
backing store (SQL, Redis, …) still receives every save, so nothing is lost on restart.

It assumes one Rasa process owns a conversation at a time (crossdesk runs one Rasa server; Rasa's lock
store already serialises messages per conversation). With several Rasa replicas, configure the backing
store directly instead (CROSSDESK_RASA_TRACKER_CACHE=0).
"""
from __future__ import annotations

from collections import OrderedDict
from itertools import islice
from typing import Any, Dict, Iterable, Optional, Text

from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted
from rasa.shared.core.trackers import DialogueStateTracker, get_trackers_for_conversation_sessions
from rasa.utils.endpoints import EndpointConfig

SESSION_START = "action_session_start"


class LiveTrackerStore(TrackerStore):
    def __init__(self, domain: Optional[Domain] = None, event_broker: Optional[EventBroker] = None,
                 host: Optional[Text] = None, backend: Optional[Dict[Text, Any]] = None,
                 max_conversations: int = 20000, **kwargs: Any) -> None:
        super().__init__(domain, event_broker, **kwargs)
        # The backing store gets no broker: events are streamed once, by this store.
        self._backend = TrackerStore.create(EndpointConfig.from_dict(backend), domain) if backend else None
        self._live: "OrderedDict[Text, DialogueStateTracker]" = OrderedDict()
        self._saved_len: Dict[Text, int] = {}
        # Without a durable backend, evicting would lose conversations, so nothing is evicted.
        self.max_conversations = max_conversations if self._backend else None

    @property
    def domain(self) -> Domain:
        return self._domain

    @domain.setter
    def domain(self, domain: Optional[Domain]) -> None:
        self._domain = domain or Domain.empty()
        if self._backend is not None:
            self._backend.domain = self._domain

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        tracker = self._live.get(sender_id)
        if tracker is not None:
            self._live.move_to_end(sender_id)
            return tracker
        if self._backend is None:
            return None
        tracker = await self._backend.retrieve(sender_id)
        if tracker is not None:
            self._remember(tracker)
        return tracker

    async def retrieve_full_tracker(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        if self._backend is not None:
            return await self._backend.retrieve_full_tracker(sender_id)
        return await self.retrieve(sender_id)

    async def save(self, tracker: DialogueStateTracker) -> None:
        await self.stream_events(tracker)
        if self._backend is not None:
            await self._backend.save(tracker)
        self._remember(self._current_session(tracker))

    async def keys(self) -> Iterable[Text]:
        keys = set(self._live)
        if self._backend is not None:
            # Rasa's RedisTrackerStore.keys() returns its storage keys, prefix included; hand out sender ids.
            prefix = getattr(self._backend, "key_prefix", "") or ""
            keys |= {k[len(prefix):] if prefix and k.startswith(prefix) else k for k in await self._backend.keys()}
        return keys

    def _current_session(self, tracker: DialogueStateTracker) -> DialogueStateTracker:
        """Like Rasa's stores, hand out only the latest conversation session."""
        start = self._saved_len.get(tracker.sender_id, 0)
        new_events = list(islice(tracker.events, start, None))
        restarted = any(isinstance(e, ActionExecuted) and e.action_name == SESSION_START for e in new_events)
        if restarted and len(tracker.events) > len(new_events):
            return get_trackers_for_conversation_sessions(tracker)[-1]
        return tracker

    def _remember(self, tracker: DialogueStateTracker) -> None:
        self._live[tracker.sender_id] = tracker
        self._live.move_to_end(tracker.sender_id)
        self._saved_len[tracker.sender_id] = len(tracker.events)
        while self.max_conversations is not None and len(self._live) > self.max_conversations:
            evicted, _ = self._live.popitem(last=False)
            self._saved_len.pop(evicted, None)
