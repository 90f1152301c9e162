"""Where checks run: the local backend (``audit.runner``, the default) and Ray
(``audit.backends.ray_backend``, the optional ``audit[ray]`` extra)."""
