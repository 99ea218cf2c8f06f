"""bot/rasa_ext/tracker_store.py runs inside Rasa (Python 3.10): exercise it there, with real Redis."""
from __future__ import annotations

import subprocess
import textwrap

from bot import stack

SCRIPT = textwrap.dedent('''
    import asyncio, sys
    import redis
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, SessionStarted, SlotSet, UserUttered
    from bot.rasa_ext.tracker_store import LiveTrackerStore

    REDIS = dict(type="redis", url="127.0.0.1", port=6379, db=6, key_prefix="livetest")

    async def main():
        redis.Redis(db=6).flushdb()
        domain = Domain.from_yaml("slots:\\n  flow:\\n    type: text\\n    mappings:\\n    - type: custom\\n")
        store = LiveTrackerStore(domain=domain, backend=REDIS)
        tracker = await store.get_or_create_tracker("s1")
        tracker.update(UserUttered("hello"))
        tracker.update(SlotSet("flow", "track"))
        await store.save(tracker)
        again = await store.retrieve("s1")
        assert again is tracker, "live object is reused, not rebuilt"

        # write-through: a new store (a restarted Rasa) finds the conversation in the backend
        fresh = LiveTrackerStore(domain=domain, backend=REDIS)
        restored = await fresh.retrieve("s1")
        assert restored is not None and restored is not tracker
        assert restored.get_slot("flow") == "track"
        assert [e.text for e in restored.events if isinstance(e, UserUttered)] == ["hello"]

        # a new session: only the latest session is handed out, like Rasa's own stores
        tracker.update(ActionExecuted("action_session_start"))
        tracker.update(SessionStarted())
        tracker.update(UserUttered("new session"))
        await store.save(tracker)
        current = await store.retrieve("s1")
        assert [e.text for e in current.events if isinstance(e, UserUttered)] == ["new session"], list(current.events)

        # memory-only mode keeps everything (nothing to evict to)
        memory = LiveTrackerStore(domain=domain, max_conversations=1)
        for i in range(3):
            t = await memory.get_or_create_tracker(f"m{i}")
            await memory.save(t)
        assert len(await memory.keys()) == 3
        # with a backend the in-process cache is bounded
        bounded = LiveTrackerStore(domain=domain, backend=REDIS, max_conversations=1)
        for i in range(3):
            await bounded.save(await bounded.get_or_create_tracker(f"b{i}"))
        assert len(bounded._live) == 1 and set(await bounded.keys()) >= {"b0", "b1", "b2"}
        redis.Redis(db=6).flushdb()
        print("ok")

    asyncio.run(main())
''')


def test_live_tracker_store_in_rasa():
    env = stack._rasa_env()
    result = subprocess.run([stack.rasa_python(), "-c", SCRIPT], cwd=stack.ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stdout[-3000:] + result.stderr[-3000:]
