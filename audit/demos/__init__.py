"""Demonstration models and corpora built offline from data in installed wheels.

- ``adult``: a scikit-learn model on UCI Adult and its predictions file (fairness demo)
- ``compas``: ProPublica's filtered COMPAS table as a predictions file (fairness demo)
- ``dreaddit``: a MiniLM stress classifier trained on dreaddit (``dreaddit-classifier`` asset)
- ``canary``: a small GPT-2-style LM with inserted secrets (privacy demo)
"""
