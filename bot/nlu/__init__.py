"""Natural-language understanding: Rasa-format training data -> a trained model -> `Prediction`.

Step 6 of the message path (`Interpreter.parse`) and the content-time side (`load_training_data`,
`load_nlu_config`, `train`). See docs/nlu.md.
"""

from bot.nlu.config import NluConfig, load_nlu_config
from bot.nlu.data import TrainingData, load_training_data
from bot.nlu.interpreter import Interpreter, load_interpreter
from bot.nlu.model import latest_model
from bot.nlu.train import train

__all__ = [
    "Interpreter",
    "NluConfig",
    "TrainingData",
    "latest_model",
    "load_interpreter",
    "load_nlu_config",
    "load_training_data",
    "train",
]
