"""Report templates and CSS (installed as the package ``audit._templates``; data files only)."""
