"""Explainability checks: attention and rollout, SHAP (text and tabular), Integrated Gradients,
and the faithfulness of attributions (comprehensiveness and sufficiency)."""
