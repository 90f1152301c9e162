"""Fairness checks: group metrics with bootstrap CIs, counterfactual identity swaps, identity-term AUCs."""
