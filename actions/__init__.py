"""The demo fan line's rasa-sdk custom actions (`python -m rasa_sdk --actions actions`)."""
