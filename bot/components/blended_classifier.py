"""A second opinion on the intent: logistic regression over the same features, blended with DIET.

Measured on the held-out shopper messages of twelve languages (docs/benchmarks.md): DIET alone and Rasa's
LogisticRegressionClassifier alone each reach macro-F1 ~0.90 and make different mistakes (DIET over-trusts
a rare word, LR spreads probability over similar intents), so their average is better than either. It
costs a few seconds of training and well under a millisecond per message.

Place it after DIETClassifier (with DIET's ranking_length 0, so all of DIET's probabilities are seen);
it replaces `intent` and `intent_ranking` with the weighted mean of both distributions.
"""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.shared.nlu.training_data.message import Message

RANKING_LENGTH = "ranking_length"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class BlendedLogisticRegression(LogisticRegressionClassifier):
    """LogisticRegressionClassifier whose output is blended with the intent ranking already on the message."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {**LogisticRegressionClassifier.get_default_config(), "logistic_regression_weight": 1.0}

    def process(self, messages: List[Message]) -> List[Message]:
        if not messages:
            return messages
        probabilities = self.clf.predict_proba(self._create_X(messages))
        weight = float(self.config["logistic_regression_weight"])
        for message, row in zip(messages, probabilities):
            earlier = {e["name"]: float(e["confidence"]) for e in message.get("intent_ranking") or []}
            mine = {str(name): float(p) for name, p in zip(self.clf.classes_, row)}
            names = set(mine) | set(earlier)
            if earlier:
                blended = {n: (earlier.get(n, 0.0) + weight * mine.get(n, 0.0)) / (1.0 + weight) for n in names}
            else:  # no earlier classifier (or it abstained): this one alone
                blended = mine
            ranking = sorted(({"name": n, "confidence": c} for n, c in blended.items()),
                             key=lambda e: (-e["confidence"], e["name"]))
            if self.config[RANKING_LENGTH] > 0:
                ranking = ranking[: self.config[RANKING_LENGTH]]
            message.set("intent", ranking[0], add_to_output=True)
            message.set("intent_ranking", ranking, add_to_output=True)
        return messages
