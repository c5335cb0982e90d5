"""Rasa compatibility: how Rasa's config, data and projects are read (see docs/from-rasa.md).

Content time only: `components` maps Rasa 3.x pipeline components and policies to Fanline's,
`importer` turns a Rasa project into a fan line (`fanline import rasa`), `nlu_server` takes
parses from a running Rasa NLU server (`nlu:` in endpoints.yml).
"""
