"""The audience side: who the line may text and what it sends them unasked.

Signup and consent, segments, broadcasts (and their CLI), quiet hours, privacy (export and
erasure); the engagement loop (timed flows, the frequency cap, tags, tracked links, A/B
variants, reports) lives here too. The message path (pipeline, nlu, flows) never imports the
broadcasting parts; it records consent through `consent`.
"""
