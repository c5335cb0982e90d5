"""Test-only rasa-sdk actions: echo the tracker back, raise, reject, hang."""
