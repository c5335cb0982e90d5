"""Fanline: a self-hosted fan-texting engine (YAML flows, Rasa-format NLU, Twilio SMS, a human inbox)."""

__version__ = "0.1.0"
