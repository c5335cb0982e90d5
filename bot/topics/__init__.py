"""Topics of waiting texts: what fans asked that reached a person, grouped by meaning, so one
answer reaches every fan who asked (docs/architecture.md, "Topics: answer once, reply to many").

Off the inbound path, beside the human queue: `sweep.TopicSweep` groups new waiting texts
(`vectors.py` turns texts into vectors, `grouping.py` groups them, pure), and `service.py` holds
the agents' functions (list, show, move, merge, rename, reply to a topic, auto-reply).
"""
