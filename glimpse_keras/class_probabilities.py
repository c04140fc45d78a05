"""What a trained model answers: class probabilities and their top classes.

Shared by the `Classifier` (`classifier.py`), its timelines (`timeline.py`)
and its live streams (`streaming.py`), which sit above this module.
"""

import numpy as np

from glimpse_keras.errors import GlimpseError

TOP_K = 5


class ClassifierError(GlimpseError, ValueError):
    """A request that cannot be served (bad option, model folder or output); names what is wrong."""


class ClassProbabilities:
    """The top class of a result with `probabilities` (classes,) and `class_names`."""

    @property
    def class_id(self):
        """The most probable class (int)."""
        return int(np.argmax(self.probabilities))

    @property
    def label(self):
        """The most probable class name."""
        return self.class_names[self.class_id]

    @property
    def probability(self):
        """The probability of `label` (float)."""
        return float(self.probabilities[self.class_id])

    def top(self, k=TOP_K):
        """The k most probable classes, best first: list of (class_id, name, probability)."""
        return top_classes(self.probabilities, self.class_names, k)


def top_classes(probabilities, class_names, k=TOP_K):
    """The k most probable classes, best first: list of (class_id, name, probability)."""
    order = np.argsort(-np.asarray(probabilities), kind="stable")[: min(k, len(probabilities))]
    return [(int(i), class_names[i], float(probabilities[i])) for i in order]


def top_json(probabilities, class_names, k=TOP_K):
    """`top_classes` as a list of {"class_id", "class_name", "probability"} dicts."""
    return [
        {"class_id": class_id, "class_name": name, "probability": round(probability, 6)}
        for class_id, name, probability in top_classes(probabilities, class_names, k)
    ]
